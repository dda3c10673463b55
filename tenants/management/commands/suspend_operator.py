from tenants.models import Operator

from ._status import StatusCommand


class Command(StatusCommand):
    help = "Suspend an operator: its API answers 403 tenant_suspended, its piles are refused."
    status = Operator.Status.SUSPENDED
