"""Cross-checks of one operator's charging money: orders, the piles' records, ledger
postings, holds and wallets agree (``manage.py consistency_check``, the fault matrix).

Each problem is a (kind, reference, detail) triple. Kinds:

- ``ledger``: the ledger itself (drift, unbalanced or one-line postings, forbidden negative
  balances; settlement.selectors.ledger_check);
- ``charge_missing``: a settled wallet order with a member has no charge posting;
- ``charge_unsettled``: a charge posting for an order that is not settled;
- ``charge_doubled``: more than one charge posting references one order;
- ``hold_kept``: a hold still held for an order that ended (not active, not abnormal);
- ``hold_missing``: an active wallet order holding funds has no held hold;
- ``record_unsettled``: a record stored over ``grace`` ago whose order is not settled
  (pile-initiated orders without a member and abnormal ones are staff's, not counted);
- ``record_mismatch``: a settled order's energy differs from its record's;
- ``stuck``: an order starting or stopping for longer than its deadlines allow.

Informational counts (not problems): abnormal orders, orders flagged for review.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from settlement.models import Hold, Posting
from settlement.selectors import ledger_check

from .models import (
    ACTIVE_STATES,
    ChargingOrder,
    ChargingPolicy,
    OrderState,
    PaymentMode,
    TransactionRecord,
)

S = OrderState


@dataclass
class ConsistencyReport:
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    orders: int = 0
    records: int = 0
    settled: int = 0
    abnormal: int = 0
    review: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return dict(Counter(kind for kind, _, _ in self.problems))


def consistency_check(*, now: datetime | None = None, grace_s: int = 120) -> ConsistencyReport:
    """Check the current operator's schema; see the module docstring for the kinds."""
    now = now or timezone.now()
    policy = ChargingPolicy.current()
    report = ConsistencyReport()
    add = report.problems.append

    ledger = ledger_check()
    for code, cached, computed in ledger.drift:
        add(("ledger", code, f"drift: cached {cached}, entries {computed}"))
    for key, total in ledger.unbalanced:
        add(("ledger", key, f"unbalanced: {total}"))
    for key in ledger.single_entry:
        add(("ledger", key, "one-line posting"))
    for code, balance in ledger.negative:
        add(("ledger", code, f"negative: {balance}"))

    orders = {
        o["number"]: o
        for o in ChargingOrder.objects.values(
            "pk", "number", "state", "mode", "member_id", "hold_amount", "energy_kwh",
            "abnormal", "review_reason", "created_at", "stop_requested_at", "pile_initiated",
        )
    }
    report.orders = len(orders)
    report.settled = sum(o["state"] == S.SETTLED for o in orders.values())
    report.abnormal = sum(o["abnormal"] for o in orders.values())
    report.review = sum(bool(o["review_reason"]) for o in orders.values())

    charges = Counter()
    for key in Posting.objects.filter(key__startswith="order:", key__endswith=":charge").values_list(
        "key", flat=True
    ):
        charges[key.split(":")[1]] += 1
    by_ref = Counter(
        Posting.objects.filter(kind=Posting.Kind.ORDER_CHARGE, ref__in=list(orders)).values_list(
            "ref", flat=True
        )
    )
    for number, n in by_ref.items():
        if n > 1:
            add(("charge_doubled", number, f"{n} charge postings"))
    for number, o in orders.items():
        wallet = o["mode"] == PaymentMode.WALLET and o["member_id"]
        if o["state"] == S.SETTLED and wallet and not charges.get(number):
            add(("charge_missing", number, "settled without a charge posting"))
        if charges.get(number) and o["state"] != S.SETTLED:
            add(("charge_unsettled", number, f"charge posting while {o['state']}"))

    held = set(
        Hold.objects.filter(status=Hold.Status.HELD, key__startswith="order:").values_list(
            "key", flat=True
        )
    )
    for number, o in orders.items():
        key = f"order:{number}:hold"
        active = o["state"] in ACTIVE_STATES
        # Abnormal orders and orders under review keep their hold until staff decide.
        if key in held and not active and o["state"] not in (S.ABNORMAL, S.REVIEW):
            add(("hold_kept", number, f"hold still held while {o['state']}"))
        if (
            active and o["state"] != S.CREATED and o["mode"] == PaymentMode.WALLET
            and o["hold_amount"] > 0 and key not in held
        ):
            add(("hold_missing", number, f"{o['state']} without a held hold"))

    by_pk = {o["pk"]: o for o in orders.values()}
    for record in TransactionRecord.objects.values(
        "trade_no", "order_id", "received_at", "energy_kwh"
    ).iterator():
        report.records += 1
        o = by_pk.get(record["order_id"])
        if record["received_at"] > now - timedelta(seconds=grace_s):
            continue
        if o is None:  # not linked yet: found by trade number
            order = ChargingOrder.objects.filter(trade_no=record["trade_no"]).values(
                "number", "state", "abnormal", "member_id", "pile_initiated"
            ).first()
            if order is None or order["state"] != S.SETTLED:
                add(("record_unsettled", record["trade_no"], "stored, order not settled"))
            continue
        if o["state"] != S.SETTLED:
            staff_matter = o["abnormal"] or (o["pile_initiated"] and not o["member_id"])
            if not staff_matter:
                add(("record_unsettled", record["trade_no"], f"order {o['number']} {o['state']}"))
            continue
        energy = record["energy_kwh"]
        if energy != o["energy_kwh"]:
            add(("record_mismatch", o["number"], f"record {energy} kWh, order {o['energy_kwh']}"))

    starting_limit = now - timedelta(seconds=policy.start_timeout_s + grace_s)
    stopping_limit = now - timedelta(seconds=3 * policy.stop_timeout_s + grace_s)
    for number, o in orders.items():
        if o["state"] in (S.CREATED, S.STARTING) and o["created_at"] < starting_limit:
            add(("stuck", number, f"{o['state']} since {o['created_at']:%Y-%m-%d %H:%M:%S}"))
        if o["state"] == S.STOPPING and (o["stop_requested_at"] or o["created_at"]) < stopping_limit:
            add(("stuck", number, "stopping past three record deadlines"))
    return report
