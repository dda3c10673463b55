"""The gateways' seams to the services of other apps, in one place.

Every function is synchronous, runs in the gateway's database thread pool and must be
called inside the operator's schema (``django_tenants.utils.schema_context``).

- Online/offline: ``stations.services`` (registry of live piles, offline faults).
- Billing model (YKC 0x05/0x06, 0x09/0x0A, 0x58/0x57): ``protocols.ykc.tariff_sync``.
"""

from __future__ import annotations

from datetime import datetime

from protocols.ykc import tariff_sync
from protocols.ykc.tariff import ykc_wire_rates
from stations import services as station_services


def pile_mark_online(*, schema: str, pile_code: str, at: datetime) -> None:
    """The pile logged in (YKC 0x02 success): online, last seen now; connectors back from
    offline and its offline fault cleared (stations)."""
    station_services.pile_mark_online(pile_code=pile_code, at=at)


def pile_mark_offline(*, schema: str, pile_code: str, at: datetime) -> None:
    """The pile's connection closed: offline, connectors offline, a fault opened."""
    station_services.pile_mark_offline(pile_code=pile_code, at=at)


# --- billing model (tariffs) ----------------------------------------------------------------


def billing_model_for(pile_code: str):
    """The pile's billing model as the codec's ``BillingModel`` (YKC 0x0A/0x58 body), or
    None when the pile has no tariff."""
    model = tariff_sync.pile_billing_model(pile_code)
    if model is None:
        return None
    from protocols.ykc import BillingModel

    return BillingModel(f"{model['model_number']:04d}", *ykc_wire_rates(model),
                        int(model["loss_ratio"]), tuple(model["slots"]))


def billing_model_verified(pile_code: str, model_no: str) -> bool:
    """YKC 0x05: does the pile hold its current model? (False → 0x06 "differs")."""
    if not model_no.isdigit():
        return False
    return bool(tariff_sync.pile_billing_model_verified(
        pile_code=pile_code, model_number=int(model_no)))


def piles_due_billing_model() -> list[str]:
    """Pile codes whose model must be pushed (0x58) — a new tariff or a new day map."""
    return list(tariff_sync.piles_due_billing_model())


def billing_model_sent(pile_code: str, model_no: str) -> None:
    """A model went out in 0x0A or 0x58."""
    tariff_sync.pile_billing_model_sent(pile_code=pile_code, model_number=int(model_no))


def billing_model_delivered(pile_code: str, model_no: str) -> None:
    """A 0x0A reply went out: 0x0A has no answer, so the pile holds it from now on."""
    billing_model_sent(pile_code, model_no)
    billing_model_acked(pile_code, model_no, True)


def billing_model_acked(pile_code: str, model_no: str, success: bool) -> None:
    """The pile answered a 0x58 with 0x57 (``success`` = 设置结果 0x01)."""
    tariff_sync.pile_billing_model_acked(
        pile_code=pile_code, model_number=int(model_no), success=success)
