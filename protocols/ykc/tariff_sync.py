"""Keeping YKC piles' billing models (计费模型) in step with the domain's tariffs.

A YKC pile holds one billing model: a model number and one day's 48-slot map. The platform
records per pile (:class:`PileBillingModel`) what it is due (the version in force and today's
map), what the gateway sent (0x0A reply or 0x58 push) and what the pile acknowledged (0x57, or
0x05 verification). Slot maps are stored as 48-character strings of YKC slot codes 0..3, so a
season or critical-peak day under the same version still shows as a difference.

Reads the domain through :mod:`billing.tariffs.selectors` (neutral snapshots); learns of
tariff changes through :data:`billing.tariffs.signals.tariffs_changed`. Every function runs
inside the operator's schema.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.tariffs import selectors as tariffs
from billing.tariffs.pricing import TariffSnapshot
from evplatform.errors import DomainError
from stations.models import Pile

from .models import PileBillingModel
from .tariff import YkcBillingModel, to_ykc_billing_model

__all__ = [
    "PileNotFound",
    "pile_billing_model",
    "pile_billing_model_acked",
    "pile_billing_model_due",
    "pile_billing_model_sent",
    "pile_billing_model_states",
    "pile_billing_model_verified",
    "pile_billing_models_refresh",
    "piles_due_billing_model",
    "slots_code",
]


class PileNotFound(DomainError):
    code = "pile_not_found"
    status = 404


def slots_code(model: YkcBillingModel | dict) -> str:
    """The model's 48 slot codes as a string such as ``"3333…2211…"``."""
    return "".join(str(code) for code in model["slots"])


def _model(snapshot: TariffSnapshot | None, day: date) -> dict[str, Any] | None:
    return None if snapshot is None else dict(to_ykc_billing_model(snapshot, day))


def _local_date(pile: Pile, at: datetime) -> date:
    return at.astimezone(ZoneInfo(pile.station.time_zone)).date()


# ---------------------------------------------------------------- reads


def pile_billing_model(pile_code: str, on_date: date | None = None) -> dict[str, Any] | None:
    """The YKC billing model (0x0A / 0x58) for pile ``pile_code`` on its local ``on_date``.

    ``on_date`` None means the pile's local today. The version is the one in force now when
    ``on_date`` is today, else the one in force at the start of ``on_date``. Returns
    :func:`protocols.ykc.tariff.to_ykc_billing_model`'s dict (``model_number`` = the version's
    model number, ``rates`` 8 Decimals yuan/kWh sharp..valley electricity then service — use
    ``ykc_wire_rates`` for wire order —, ``loss_ratio``, ``slots`` 48 ints 0..3), or None when
    the pile is unknown or has no tariff in force.
    """
    pile = Pile.objects.select_related("station").filter(code=pile_code).first()
    if pile is None:
        return None
    now = timezone.now()
    today = _local_date(pile, now)
    day = on_date or today
    at = (
        now
        if day == today
        else datetime.combine(day, time(0), tzinfo=ZoneInfo(pile.station.time_zone))
    )
    return _model(tariffs.pile_snapshot(pile, at), day)


def pile_billing_model_due(pile: Pile, at: datetime) -> tuple[int, str] | None:
    """``(model number, slot map)`` the pile should hold at ``at``, or None without tariff."""
    model = _model(tariffs.pile_snapshot(pile, at), _local_date(pile, at))
    return None if model is None else (model["model_number"], slots_code(model))


def _dues(piles: QuerySet[Pile], at: datetime) -> list[tuple[Pile, tuple[int, str] | None]]:
    """Each YKC pile of ``piles`` with the (model number, slot map) it is due at ``at``."""
    ykc = piles.filter(protocol=Pile.Protocol.YKC).select_related("billing_model")
    out = []
    for pile, snapshot in tariffs.pile_snapshots(ykc, at):
        model = _model(snapshot, _local_date(pile, at))
        out.append((pile, None if model is None else (model["model_number"], slots_code(model))))
    return out


def _acked(pile: Pile) -> tuple[int | None, str]:
    state = getattr(pile, "billing_model", None)
    if state is None:
        return (None, "")
    return (state.model_number_acked, state.slots_acked)


def piles_due_billing_model() -> list[str]:
    """Codes of YKC piles whose due billing model (number and today's slot map) differs from
    what they acknowledged, sorted. Piles without a tariff in force are never due."""
    return sorted(
        pile.code
        for pile, due in _dues(Pile.objects.all(), timezone.now())
        if due is not None and due != _acked(pile)
    )


def pile_billing_model_states(piles: QuerySet[Pile] | None = None) -> QuerySet[PileBillingModel]:
    """Recorded sync states (admin lists)."""
    states = PileBillingModel.objects.select_related("pile", "pile__station")
    return states if piles is None else states.filter(pile__in=piles)


# ---------------------------------------------------------------- writes


@transaction.atomic
def pile_billing_models_refresh(*, piles: QuerySet[Pile] | None = None,
                                at: datetime | None = None) -> int:
    """Record, for YKC ``piles`` (a Pile queryset; default all), the billing model each is
    due at ``at`` (default now); ``due_since`` moves only when the due model changes.
    Returns how many records changed."""
    at = at or timezone.now()
    piles = Pile.objects.all() if piles is None else piles
    changed = 0
    for pile, due in _dues(piles, at):
        number, slots = due if due is not None else (None, "")
        state = getattr(pile, "billing_model", None)
        if state is None:
            if due is None:
                continue
            PileBillingModel.objects.create(
                pile=pile, model_number_due=number, slots_due=slots, due_since=at
            )
            changed += 1
        elif (state.model_number_due, state.slots_due) != (number, slots):
            state.model_number_due, state.slots_due = number, slots
            state.due_since = at if due is not None else None
            state.save(update_fields=["model_number_due", "slots_due", "due_since"])
            changed += 1
    return changed


def on_tariffs_changed(sender, *, piles: QuerySet[Pile] | None, at: datetime, **kwargs) -> int:
    """Receiver of ``tariffs_changed``: refresh what those piles are due."""
    return pile_billing_models_refresh(piles=piles, at=at)


def _state_for_update(pile_code: str) -> PileBillingModel:
    pile = Pile.objects.filter(code=pile_code).first()
    if pile is None:
        raise PileNotFound(detail=_("No pile with code %(code)s.") % {"code": pile_code})
    state, _created = PileBillingModel.objects.select_for_update().get_or_create(pile=pile)
    return state


def _due_today(pile_code: str) -> tuple[int, str] | None:
    model = pile_billing_model(pile_code)
    return None if model is None else (model["model_number"], slots_code(model))


@transaction.atomic
def pile_billing_model_sent(*, pile_code: str, model_number: int) -> None:
    """The gateway sent model ``model_number`` (YKC 0x58 push or 0x0A reply) to the pile.

    Records the slot map of today's model when the number is the one due. 0x0A has no
    answer: after a 0x0A call :func:`pile_billing_model_acked` with ``success=True`` too.
    Raises :class:`PileNotFound`.
    """
    state = _state_for_update(pile_code)
    due = _due_today(pile_code)
    state.model_number_sent = model_number
    state.slots_sent = due[1] if due is not None and due[0] == model_number else ""
    state.sent_at = timezone.now()
    state.last_result = PileBillingModel.Result.SENT
    state.save(update_fields=["model_number_sent", "slots_sent", "sent_at", "last_result"])


@transaction.atomic
def pile_billing_model_acked(*, pile_code: str, model_number: int, success: bool) -> None:
    """The pile answered a set-billing-model (YKC 0x57 result 0x01 ok / 0x00 fail) for
    ``model_number`` (0x57 carries no number: pass the one sent). On success the pile holds
    it; on failure what it holds is unchanged. Raises :class:`PileNotFound`."""
    state = _state_for_update(pile_code)
    now = timezone.now()
    if success:
        state.model_number_acked = model_number
        state.slots_acked = state.slots_sent if state.model_number_sent == model_number else ""
        state.acked_at = now
        state.last_result = PileBillingModel.Result.OK
    else:
        state.last_result = PileBillingModel.Result.FAILED
    state.save(update_fields=["model_number_acked", "slots_acked", "acked_at", "last_result"])


@transaction.atomic
def pile_billing_model_verified(*, pile_code: str, model_number: int) -> bool:
    """YKC 0x05: the pile says it holds ``model_number`` (0 on first connection).

    Returns True (0x06 result 0x00) when that is the version in force for the pile and the
    slot map the platform last saw the pile accept is today's; False (0x01, the pile then
    asks with 0x09) otherwise, including when the pile has no tariff. Records the number as
    what the pile holds (its slot map becomes unknown if the number changed).
    Raises :class:`PileNotFound`.
    """
    state = _state_for_update(pile_code)
    if state.model_number_acked != model_number:
        state.model_number_acked = model_number
        state.slots_acked = ""
    due = _due_today(pile_code)
    same = due is not None and due == (model_number, state.slots_acked)
    state.acked_at = timezone.now()
    state.last_result = (
        PileBillingModel.Result.VERIFIED_SAME if same else PileBillingModel.Result.VERIFIED_DIFFERS
    )
    state.save(update_fields=["model_number_acked", "slots_acked", "acked_at", "last_result"])
    return same
