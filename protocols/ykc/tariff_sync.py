"""Keeping YKC piles' billing models (计费模型) in step with the domain's tariffs.

A YKC pile holds one billing model: a model number and one day's 48-slot map. The platform
records per pile (:class:`PileBillingModel`) what it is due (the version in force and today's
map), what the gateway sent (0x0A reply or 0x58 push) and what the pile acknowledged (0x57, or
0x05 verification). Slot maps are stored as 48-character strings of YKC slot codes 0..3, so a
season or critical-peak day under the same version still shows as a difference.

Reads piles and their tariff days through charging's port (:class:`port.PileTariffQuery`,
the batch :class:`port.PileTariffsQuery`, :class:`port.PilesQuery`); learns of tariff
changes through the port's :class:`port.TariffsChanged` notice (registered in
``YkcConfig.ready``). Every function runs inside the operator's schema.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from charging import handlers, port
from evplatform.errors import DomainError

from .enums import TariffPeriod
from .models import PileBillingModel
from .tariff import YkcBillingModel, to_ykc_billing_model

__all__ = [
    "PileNotFound",
    "on_tariffs_changed",
    "pile_billing_model",
    "pile_billing_model_acked",
    "pile_billing_model_delivered",
    "pile_billing_model_due",
    "pile_billing_model_held",
    "pile_billing_model_sent",
    "pile_billing_model_states",
    "pile_billing_model_verified",
    "pile_billing_models_delivered",
    "pile_billing_models_verified",
    "pile_billing_models_refresh",
    "piles_due_billing_model",
    "slots_code",
]

YKC = "ykc"  # stations.Pile.Protocol.YKC


class PileNotFound(DomainError):
    code = "pile_not_found"
    status = 404


def slots_code(model: YkcBillingModel | dict) -> str:
    """The model's 48 slot codes as a string such as ``"3333…2211…"``."""
    return "".join(str(code) for code in model["slots"])


def _due(day: port.TariffDay | None) -> tuple[int, str] | None:
    """``(model number, slot map)`` of a pile's tariff day (None: no tariff)."""
    return None if day is None else _version_due(day.version_number, day.slots)


@functools.lru_cache(maxsize=4096)
def _version_due(version_number: int, slots: tuple[str, ...]) -> tuple[int, str]:
    """What a tariff version with that day map is as a YKC model: computed once per
    version and map (a login storm verifies thousands of piles on a handful of them)."""
    return version_number, "".join(str(TariffPeriod[name.upper()].value) for name in slots)


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
    day = handlers.handle(port.PileTariffQuery(pile_code, on_date))
    return None if day is None else dict(to_ykc_billing_model(day))


def pile_billing_model_due(pile_code: str, at: datetime) -> tuple[int, str] | None:
    """``(model number, slot map)`` the pile should hold at ``at``, or None when it is
    unknown or has no tariff."""
    entry = _dues([pile_code], at).get(pile_code)
    return None if entry is None else entry[1]


def _dues(pile_codes: Iterable[str] | None,
          at: datetime) -> dict[str, tuple[int, tuple[int, str] | None]]:
    """Each YKC pile of ``pile_codes`` (None: all) → (pile id, the (model number, slot map)
    it is due at ``at``, None without tariff)."""
    codes = None if pile_codes is None else tuple(pile_codes)
    answer = handlers.handle(port.PileTariffsQuery(pile_codes=codes, protocol=YKC, at=at))
    return {code: (entry.pile_id, _due(entry.day)) for code, entry in answer.piles.items()}


def _acked(state: PileBillingModel | None) -> tuple[int | None, str]:
    return (None, "") if state is None else (state.model_number_acked, state.slots_acked)


def piles_due_billing_model() -> list[str]:
    """Codes of YKC piles whose due billing model (number and today's slot map) differs from
    what they acknowledged, sorted. Piles without a tariff in force are never due."""
    dues = _dues(None, timezone.now())
    states = {s.pile_id: s for s in PileBillingModel.objects.all()}
    return sorted(
        code for code, (pile_id, due) in dues.items()
        if due is not None and due != _acked(states.get(pile_id))
    )


def pile_billing_model_states(pile_codes: Iterable[str] | None = None
                              ) -> QuerySet[PileBillingModel]:
    """Recorded sync states (admin lists), of ``pile_codes`` when given."""
    states = PileBillingModel.objects.all()
    return states if pile_codes is None else states.filter(pile__code__in=list(pile_codes))


# ---------------------------------------------------------------- writes


@transaction.atomic
def pile_billing_models_refresh(*, pile_codes: Iterable[str] | None = None,
                                at: datetime | None = None) -> int:
    """Record, for the YKC piles of ``pile_codes`` (default all), the billing model each is
    due at ``at`` (default now); ``due_since`` moves only when the due model changes.
    Returns how many records changed."""
    at = at or timezone.now()
    dues = _dues(pile_codes, at)
    states = {s.pile_id: s for s in PileBillingModel.objects.filter(
        pile_id__in=[pile_id for pile_id, _due in dues.values()])}
    changed = 0
    for pile_id, due in dues.values():
        number, slots = due if due is not None else (None, "")
        state = states.get(pile_id)
        if state is None:
            if due is None:
                continue
            PileBillingModel.objects.create(
                pile_id=pile_id, model_number_due=number, slots_due=slots, due_since=at
            )
            changed += 1
        elif (state.model_number_due, state.slots_due) != (number, slots):
            state.model_number_due, state.slots_due = number, slots
            state.due_since = at if due is not None else None
            state.save(update_fields=["model_number_due", "slots_due", "due_since"])
            changed += 1
    return changed


def on_tariffs_changed(notice: port.TariffsChanged) -> int:
    """Listener of the port's :class:`port.TariffsChanged`: refresh what those piles are due."""
    return pile_billing_models_refresh(pile_codes=notice.pile_codes, at=notice.at)


def _state_for_update(pile_code: str) -> PileBillingModel:
    piles = handlers.handle(port.PilesQuery(pile_codes=(pile_code,)))
    if not piles:
        raise PileNotFound(detail=_("No pile with code %(code)s.") % {"code": pile_code})
    state, _created = PileBillingModel.objects.select_for_update().get_or_create(
        pile_id=piles[0].pile_id)
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
        if state.model_number_acked != model_number or state.held_since is None:
            state.held_since = now
        state.model_number_acked = model_number
        state.slots_acked = state.slots_sent if state.model_number_sent == model_number else ""
        state.acked_at = now
        state.last_result = PileBillingModel.Result.OK
    else:
        state.last_result = PileBillingModel.Result.FAILED
    state.save(update_fields=["model_number_acked", "slots_acked", "acked_at", "last_result",
                              "held_since"])


def pile_billing_model_delivered(*, pile_code: str, model_number: int, slots: str) -> None:
    """A 0x0A reply carrying model ``model_number`` with slot map ``slots`` (the
    :func:`slots_code` of what was sent) went out: 0x0A has no answer, so the pile holds it
    from now on. The same record as :func:`pile_billing_model_sent` then
    :func:`pile_billing_model_acked` with ``success=True``, in one UPDATE when the pile has
    its record (issue #22: 15 statements before). Raises :class:`PileNotFound`."""
    now = timezone.now()
    delivered = PileBillingModel.objects.filter(pile__code=pile_code).update(
        model_number_sent=model_number, slots_sent=slots, sent_at=now,
        model_number_acked=model_number, slots_acked=slots, acked_at=now,
        last_result=PileBillingModel.Result.OK,
        held_since=Case(When(Q(model_number_acked=model_number, held_since__isnull=False),
                             then=F("held_since")), default=Value(now)))
    if not delivered:  # its first model: the record is made (or the pile is unknown)
        pile_billing_model_sent(pile_code=pile_code, model_number=model_number)
        pile_billing_model_acked(pile_code=pile_code, model_number=model_number, success=True)


@transaction.atomic
def pile_billing_models_delivered(models: dict[int, tuple[int, str]]) -> None:
    """0x0A replies to many piles at once (a gateway batches the 0x09 requests of a login
    storm): ``models`` maps each pile's id (``port.PileTariff.pile_id``) to the (model
    number, slot map) delivered. Each record ends as :func:`pile_billing_model_delivered`
    leaves it, in a fixed number of statements whatever the number of piles: missing
    records created in one statement, the records locked in pile order, one UPDATE per
    distinct model (a storm: the handful of tariff versions in force)."""
    if not models:
        return
    ids = sorted(models)
    PileBillingModel.objects.bulk_create([PileBillingModel(pile_id=pile_id) for pile_id in ids],
                                         ignore_conflicts=True)
    list(PileBillingModel.objects.select_for_update().filter(pile_id__in=ids)
         .order_by("pile_id").values_list("pk", flat=True))
    by_model: dict[tuple[int, str], list[int]] = {}
    for pile_id in ids:
        by_model.setdefault(models[pile_id], []).append(pile_id)
    now = timezone.now()
    for (number, slots), pile_ids in by_model.items():
        PileBillingModel.objects.filter(pile_id__in=pile_ids).update(
            model_number_sent=number, slots_sent=slots, sent_at=now,
            model_number_acked=number, slots_acked=slots, acked_at=now,
            last_result=PileBillingModel.Result.OK,
            held_since=Case(When(Q(model_number_acked=number, held_since__isnull=False),
                                 then=F("held_since")), default=Value(now)))


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
        # A number the pile merely claims (a pile from another platform may hold one with the
        # same number) is not a confirmation: only a delivered 0x0A or an accepted 0x58 is.
        state.held_since = None
    due = _due_today(pile_code)
    same = due is not None and due == (model_number, state.slots_acked)
    state.acked_at = timezone.now()
    state.last_result = (
        PileBillingModel.Result.VERIFIED_SAME if same else PileBillingModel.Result.VERIFIED_DIFFERS
    )
    state.save(update_fields=["model_number_acked", "slots_acked", "acked_at", "last_result",
                              "held_since"])
    return same


def pile_billing_models_verified(claims: dict[str, int], *, at: datetime | None = None
                                 ) -> dict[str, bool]:
    """YKC 0x05 of many piles at once (a gateway batches the verifications of a login storm):
    ``claims`` maps each pile code to the model number it says it holds. Each answer and
    each record is what :func:`pile_billing_model_verified` gives and writes for that pile,
    in a fixed number of statements whatever the number of piles: the tariffs through the
    port's batch query (two reads; each tariff version's snapshot parsed once per process),
    then one statement that locks the existing records in pile order, rewrites them from
    what they held (no read into Python and back) and creates the missing ones. A record
    created meanwhile by another transaction (the same pile verifying twice at once) is
    done by a second such statement. Piles not found are left out of the answer (as that
    function's :class:`PileNotFound`)."""
    at = at or timezone.now()
    table = connection.ops.quote_name(PileBillingModel._meta.db_table)
    same, differs = PileBillingModel.Result.VERIFIED_SAME, PileBillingModel.Result.VERIFIED_DIFFERS
    with transaction.atomic():
        dues = _dues(claims, at)
        now = timezone.now()
        todo = sorted((pile_id, code) for code, (pile_id, _due) in dues.items())
        answers: dict[str, bool] = {}
        for _round in range(2):
            if not todo:
                break
            ids = [pile_id for pile_id, _code in todo]
            numbers = [claims[code] for _pile_id, code in todo]
            due = [dues[code][1] for _pile_id, code in todo]
            # The slot map kept is the one acknowledged when the number is the same; a
            # number the pile merely claims (a pile from another platform may hold one with
            # the same number) is no confirmation: slots unknown, held_since cleared.
            kept = "coalesce(s.model_number_acked = s.number, false)"
            slots = f"CASE WHEN {kept} THEN s.slots_acked ELSE '' END"
            with connection.cursor() as cursor:
                cursor.execute(
                    "WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::int[], %s::int[],"
                    "  %s::text[]) AS v(pile_id, number, due_number, due_slots)),"
                    " s AS (SELECT b.id, b.pile_id, b.model_number_acked, b.slots_acked,"
                    "  b.held_since, v.number, v.due_number, v.due_slots"
                    f"  FROM {table} b JOIN v ON b.pile_id = v.pile_id"
                    "  ORDER BY b.pile_id FOR UPDATE OF b),"
                    f" changed AS (UPDATE {table} b SET model_number_acked = s.number,"
                    f"  slots_acked = {slots}, acked_at = %s,"
                    f"  held_since = CASE WHEN {kept} THEN s.held_since END,"
                    "  last_result = CASE WHEN s.due_number = s.number"
                    f"   AND s.due_slots = {slots} THEN %s ELSE %s END"
                    "  FROM s WHERE b.id = s.id RETURNING b.pile_id, b.last_result),"
                    f" created AS (INSERT INTO {table} (pile_id, model_number_due, slots_due,"
                    "  due_since, model_number_sent, slots_sent, sent_at, model_number_acked,"
                    "  slots_acked, acked_at, held_since, last_result)"
                    "  SELECT v.pile_id, NULL, '', NULL, NULL, '', NULL, v.number, '', %s, NULL,"
                    "   CASE WHEN v.due_number = v.number AND v.due_slots = '' THEN %s ELSE %s END"
                    "  FROM v WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.pile_id = v.pile_id)"
                    "  ORDER BY v.pile_id ON CONFLICT (pile_id) DO NOTHING"
                    "  RETURNING pile_id, last_result)"
                    " SELECT pile_id, last_result FROM changed"
                    " UNION ALL SELECT pile_id, last_result FROM created",
                    [ids, numbers, [None if d is None else d[0] for d in due],
                     [None if d is None else d[1] for d in due],
                     now, same, differs, now, same, differs])
                results = dict(cursor.fetchall())
            for pile_id, code in todo:
                if pile_id in results:
                    answers[code] = results[pile_id] == same
            todo = [(pile_id, code) for pile_id, code in todo if pile_id not in results]
    return answers


def pile_billing_model_held(pile_code: str) -> tuple[int | None, datetime | None]:
    """``(model number, held since)`` of the model the pile confirmed holding from us (a
    0x0A delivered, or a 0x58 it accepted with 0x57; a 0x05 repeating that number keeps it),
    ``(None, None)`` when it never confirmed one: a pile logging in for the first time, one
    moved from another platform (its 0x05 claims a number we never sent it), one that
    refused our model."""
    state = (PileBillingModel.objects.filter(pile__code=pile_code)
             .values_list("model_number_acked", "held_since").first())
    if state is None or not state[0] or state[1] is None:
        return None, None
    return state[0], state[1]
