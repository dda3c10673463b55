"""Signals of the tariffs domain, for those below it that must follow tariffs without being
imported by it (the pile protocols)."""

from django.dispatch import Signal

# Sent (inside the writing transaction) when the tariff of some piles may have changed, and by
# the periodic refresh. Keyword arguments: ``piles`` — a ``stations.Pile`` queryset, or None
# for all piles of the operator; ``at`` — the aware instant to evaluate. Each receiver returns
# the number of records it changed (an int).
tariffs_changed = Signal()
