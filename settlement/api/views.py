"""The member's wallet: balances and ledger history."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from settlement import selectors

from .serializers import LedgerLineOut, WalletOut


@extend_schema(responses=WalletOut)
@api_view(["GET"])
def wallet(request):
    return Response(WalletOut(selectors.wallet_balance(request.user)).data)


@extend_schema(responses=paginated("LedgerLinePage", LedgerLineOut(many=True)))
@api_view(["GET"])
def wallet_ledger(request):
    """The member's money movements, newest first (cash/bonus: + to the member)."""
    paginator = Pagination()
    page = paginator.paginate_queryset(selectors.wallet_history(request.user), request)
    return paginator.get_paginated_response(LedgerLineOut(page, many=True).data)
