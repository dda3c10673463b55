"""Members' priority standings, a seam below the apps that grant and use them.

Apps that *grant* a standing (marketing: an active SVIP) register a provider for it in
their ``AppConfig.ready``; apps that *use* it (charging: sharing a station's power by
priority, a station's queue serving some members first) ask :func:`members_with` here, so neither imports the other (the import
contracts keep charging and marketing independent). The fleet standing is the member's
own field (``Member.fleet``) and needs no provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

# name → provider(member ids, at) → the ids that hold the standing at ``at``
_PROVIDERS: dict[str, Callable[[set[int], datetime], set[int]]] = {}

SVIP = "svip"  # any paid SVIP: power shared by priority
PRIORITY_RESERVATION = "priority_reservation"  # an SVIP plan with it: served first in queues
FLEET = "fleet"


def priority_provider_register(name: str,
                               provider: Callable[[set[int], datetime], set[int]]) -> None:
    """Register (or replace) the provider of standing ``name``."""
    _PROVIDERS[name] = provider


def members_with(name: str, member_ids: Iterable[int], at: datetime) -> set[int]:
    """The members among ``member_ids`` holding standing ``name`` (``SVIP``,
    ``PRIORITY_RESERVATION``, ``FLEET``) at
    ``at``; empty for a standing nobody provides (e.g. marketing not installed)."""
    ids = {pk for pk in member_ids if pk is not None}
    if not ids:
        return set()
    if name == FLEET:
        from .models import Member

        return set(Member.objects.filter(pk__in=ids).exclude(fleet="").values_list("pk", flat=True))
    provider = _PROVIDERS.get(name)
    return provider(ids, at) & ids if provider else set()
