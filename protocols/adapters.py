"""The YKC gateway's billing-model seam (YKC 0x05/0x06, 0x09/0x0A, 0x58/0x57).

Every function is synchronous, runs in the gateway's database thread pool and must be
called inside the operator's schema (``django_tenants.utils.schema_context``). The pile's
tariff comes from the domain through charging's port (:class:`port.PileTariffQuery`) and
is turned into the codec's ``BillingModel`` here, at the protocol's edge; what each pile
holds of its model is kept beside the protocol (``protocols.ykc.tariff_sync``).
"""

from __future__ import annotations

from charging import handlers, port
from protocols.ykc import tariff_sync
from protocols.ykc.tariff import to_ykc_billing_model, ykc_wire_rates

from .ykc.billing import BillingModel
from .ykc.enums import TariffPeriod

# --- billing model (tariffs) ----------------------------------------------------------------


def billing_model(day: port.TariffDay) -> BillingModel:
    """The YKC billing model (0x0A/0x58 body) of a pile's tariff day: the version number as
    the 4-digit 计费模型编号, (electricity, service) yuan/kWh per period to 5 dp in wire
    order (periods the tariff does not price are sent as 0; no slot uses them), the 48 slot
    codes (:func:`protocols.ykc.tariff.to_ykc_billing_model`)."""
    model = to_ykc_billing_model(day)
    return BillingModel(f"{model['model_number']:04d}", *ykc_wire_rates(model),
                        model["loss_ratio"], tuple(TariffPeriod(c) for c in model["slots"]))


def billing_model_for(pile_code: str) -> BillingModel | None:
    """The pile's billing model for its local today, or None when it has no tariff."""
    from django.db import connection

    day = handlers.dispatch(connection.schema_name, port.PileTariffQuery(pile_code))
    return None if day is None else billing_model(day)


def billing_models_delivered(claims: dict[str, object]) -> dict[str, BillingModel | None]:
    """YKC 0x09 of many piles at once (the gateway's batch of a window; ``claims``' keys are
    the pile codes, its values unused): pile code → the pile's billing model for its local
    today (as :func:`billing_model_for`), None when it has no tariff; piles not found are
    left out. Each model is recorded as delivered (:func:`billing_model_delivered`) before
    the gateway writes its 0x0A, in a fixed number of statements for the batch: a 0x0A lost
    on the way shows in the pile's next 0x05, whose number then resets the record."""
    answer = handlers.handle(port.PileTariffsQuery(pile_codes=tuple(claims)))
    models: dict[str, BillingModel | None] = {}
    delivered: dict[int, tuple[int, str]] = {}
    for code, entry in answer.piles.items():
        model = models[code] = None if entry.day is None else billing_model(entry.day)
        if model is not None:
            delivered[entry.pile_id] = (int(model.model_no),
                                        "".join(str(int(period)) for period in model.slots))
    tariff_sync.pile_billing_models_delivered(delivered)
    return models


def billing_model_verified(pile_code: str, model_no: str) -> bool:
    """YKC 0x05: does the pile hold its current model? (False → 0x06 "differs")."""
    if not model_no.isdigit():
        return False
    return bool(tariff_sync.pile_billing_model_verified(
        pile_code=pile_code, model_number=int(model_no)))


def billing_models_verified(claims: dict[str, str]) -> dict[str, bool]:
    """YKC 0x05 of many piles (pile code → the 计费模型编号 it claims) in one transaction:
    pile code → holds its current model (:func:`billing_model_verified` for each; a
    non-numeric number is False). Piles not found are left out."""
    numbers = {code: int(no) for code, no in claims.items() if no.isdigit()}
    answers = tariff_sync.pile_billing_models_verified(numbers) if numbers else {}
    answers.update({code: False for code in claims if code not in numbers})
    return answers


def piles_due_billing_model() -> list[str]:
    """Pile codes whose model must be pushed (0x58) — a new tariff or a new day map."""
    return list(tariff_sync.piles_due_billing_model())


def billing_model_sent(pile_code: str, model_no: str) -> None:
    """A model went out in 0x0A or 0x58."""
    tariff_sync.pile_billing_model_sent(pile_code=pile_code, model_number=int(model_no))


def billing_model_delivered(pile_code: str, model: BillingModel) -> None:
    """A 0x0A reply carrying ``model`` went out: 0x0A has no answer, so the pile holds it
    from now on."""
    tariff_sync.pile_billing_model_delivered(
        pile_code=pile_code, model_number=int(model.model_no),
        slots="".join(str(int(period)) for period in model.slots))


def billing_model_acked(pile_code: str, model_no: str, success: bool) -> None:
    """The pile answered a 0x58 with 0x57 (``success`` = 设置结果 0x01)."""
    tariff_sync.pile_billing_model_acked(
        pile_code=pile_code, model_number=int(model_no), success=success)


def billing_model_held(pile_code: str):
    """``(model number, since)`` the pile confirmed holding, ``(None, None)`` if never."""
    return tariff_sync.pile_billing_model_held(pile_code)
