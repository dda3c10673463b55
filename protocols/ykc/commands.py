"""YKC-specific platform commands, carried on the command bus (``charging.bus``) next to the
port's protocol-neutral ones. Sent by ``manage.py ykc_command``; executed by the gateway.

Pure dataclasses (no I/O, no Django), so the codec package stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class YkcTimeSync:
    """Set the pile's clock to now (YKC 0x56 → 0x55)."""

    pile_code: str


@dataclass(frozen=True)
class YkcReboot:
    """Reboot the pile (YKC 0x92 → 0x91); ``when`` 1 = now, 2 = when idle."""

    pile_code: str
    when: int = 2


@dataclass(frozen=True)
class YkcWorkParams:
    """Allow or forbid charging and cap the output (YKC 0x52 → 0x51); percent 30–100."""

    pile_code: str
    enabled: bool = True
    max_power_percent: int = 100


@dataclass(frozen=True)
class YkcPushBillingModel:
    """Push the pile's current billing model (YKC 0x58 → 0x57)."""

    pile_code: str


YKC_COMMANDS = {cls.__name__: cls for cls in (YkcTimeSync, YkcReboot, YkcWorkParams,
                                             YkcPushBillingModel)}
