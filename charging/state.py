"""The order state machine, in one place.

created → starting → charging → stopping → finished → settled; failed (start refused or
timed out) and abnormal (record missing past its deadline, pile lost). A record that
arrives late finishes an abnormal order, or a failed one whose pile started after all;
staff may settle an abnormal order by hand. A record that cannot be billed silently (impossible
figures, buckets that don't add up, a session nobody started here) leaves its order under
review (finished → review): priced, not charged, until staff approve or reject it.
"""

from __future__ import annotations

from .models import OrderState as S

TRANSITIONS: dict[str, frozenset[str]] = {
    S.CREATED: frozenset({S.STARTING, S.FAILED}),
    S.STARTING: frozenset({S.CHARGING, S.STOPPING, S.FINISHED, S.FAILED, S.ABNORMAL}),
    S.CHARGING: frozenset({S.STOPPING, S.FINISHED, S.ABNORMAL}),
    S.STOPPING: frozenset({S.CHARGING, S.FINISHED, S.ABNORMAL}),
    S.FINISHED: frozenset({S.SETTLED, S.REVIEW}),
    # A suspicious record: staff approve (charge the bill) or reject (charge nothing).
    S.REVIEW: frozenset({S.SETTLED}),
    S.ABNORMAL: frozenset({S.FINISHED, S.SETTLED}),
    S.SETTLED: frozenset(),
    # A failed start whose pile started late after all: its record still bills it.
    S.FAILED: frozenset({S.FINISHED}),
}


class IllegalTransition(Exception):
    """An order was asked to move where the state machine does not allow."""

    def __init__(self, number: str, from_state: str, to_state: str):
        super().__init__(f"order {number}: {from_state} → {to_state} is not allowed")
        self.from_state = from_state
        self.to_state = to_state


def can_move(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS[from_state]
