"""The gateways' seams to services other engineers own. Switch them here, nowhere else.

Every function is synchronous, runs in the gateway's database thread pool and must be
called inside the operator's schema (``django_tenants.utils.schema_context``).

- ``pile_mark_online`` / ``pile_mark_offline``: stand-ins for the stations service
  ``stations.services.pile_mark_online`` (being written); replace their bodies with calls
  to it at merge.
- Billing model (YKC 0x05/0x06, 0x09/0x0A, 0x58/0x57): the tariffs engineer's
  ``billing.tariff_selectors`` / ``billing.tariff_services``. While those modules are
  absent the fallback answers "no model": 0x05 is told the model differs, 0x09 gets no
  0x0A (the pile keeps asking, as the protocol says, and does not charge).
"""

from __future__ import annotations

import importlib
from datetime import datetime

from django.db import transaction


def pile_mark_online(*, schema: str, pile_code: str, at: datetime) -> None:
    """The pile logged in (YKC 0x02 success): ``Pile.online``/``last_seen_at`` and the
    live ``seen`` set."""
    from stations import live
    from stations.models import Pile

    Pile.objects.filter(code=pile_code).update(online=True, last_seen_at=at)
    live.pile_seen(schema, pile_code, at)


def pile_mark_offline(*, schema: str, pile_code: str, at: datetime) -> None:
    """The pile's connection closed: offline, and so are its connectors (DB and live)."""
    from stations import live
    from stations.models import Connector, Pile

    with transaction.atomic():
        Pile.objects.filter(code=pile_code).update(online=False, last_seen_at=at)
        numbers = list(
            Connector.objects.filter(pile__code=pile_code)
            .exclude(status=Connector.Status.OFFLINE)
            .values_list("number", flat=True)
        )
        Connector.objects.filter(pile__code=pile_code, number__in=numbers).update(
            status=Connector.Status.OFFLINE, status_changed_at=at
        )
    for number in numbers:
        live.connector_update(schema, pile_code, number, status=Connector.Status.OFFLINE)


# --- billing model (tariffs) ----------------------------------------------------------------


def _tariffs():
    """(selectors, services) modules of the tariffs work, or (None, None) before it lands."""
    try:
        return (importlib.import_module("billing.tariff_selectors"),
                importlib.import_module("billing.tariff_services"))
    except ImportError:
        return None, None


def billing_model_for(pile_code: str):
    """The pile's billing model as the codec's ``BillingModel`` (YKC 0x0A/0x58 body), or
    None when the pile has no tariff (or the tariffs work is absent)."""
    selectors, _ = _tariffs()
    if selectors is None:
        return None
    model = selectors.pile_billing_model(pile_code)
    if model is None:
        return None
    from billing.pricing import ykc_wire_rates
    from protocols.ykc import BillingModel

    return BillingModel(f"{model['model_number']:04d}", *ykc_wire_rates(model),
                        int(model["loss_ratio"]), tuple(model["slots"]))


def billing_model_verified(pile_code: str, model_no: str) -> bool:
    """YKC 0x05: does the pile hold its current model? (False → 0x06 "differs")."""
    _, services = _tariffs()
    if services is None or not model_no.isdigit():
        return False
    return bool(services.pile_billing_model_verified(pile_code=pile_code,
                                                     model_number=int(model_no)))


def piles_due_billing_model() -> list[str]:
    """Pile codes whose model must be pushed (0x58) — a new tariff or a new day map."""
    selectors, _ = _tariffs()
    return list(selectors.piles_due_billing_model()) if selectors is not None else []


def billing_model_sent(pile_code: str, model_no: str) -> None:
    """A model went out in 0x0A or 0x58."""
    _, services = _tariffs()
    if services is not None:
        services.pile_billing_model_sent(pile_code=pile_code, model_number=int(model_no))


def billing_model_delivered(pile_code: str, model_no: str) -> None:
    """A 0x0A reply went out: 0x0A has no answer, so the pile holds it from now on."""
    billing_model_sent(pile_code, model_no)
    billing_model_acked(pile_code, model_no, True)


def billing_model_acked(pile_code: str, model_no: str, success: bool) -> None:
    """The pile answered a 0x58 with 0x57 (``success`` = 设置结果 0x01)."""
    _, services = _tariffs()
    if services is not None:
        services.pile_billing_model_acked(pile_code=pile_code, model_number=int(model_no),
                                          success=success)
