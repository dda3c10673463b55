"""The e-invoice provider port: what invoicing asks of a provider, in our words.

A provider issues asynchronously: :meth:`FapiaoProvider.issue` accepts a request (or says it
already has it), :meth:`FapiaoProvider.query` tells where it is, and the provider calls back
when it is done (the call-back only names the request: we query before believing it).
Every call is idempotent by our request number (``IssueRequest.number``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = [
    "Party", "IssueLine", "IssueRequest", "IssueResult", "ProviderError", "FapiaoProvider",
    "PENDING", "ISSUED", "FAILED",
]

PENDING, ISSUED, FAILED = "pending", "issued", "failed"


@dataclass(frozen=True)
class Party:
    name: str
    tax_number: str = ""
    address: str = ""
    phone: str = ""
    bank_account: str = ""
    email: str = ""


@dataclass(frozen=True)
class IssueLine:
    goods_name: str
    goods_code: str
    tax_rate: Decimal  # 0.13
    amount: Decimal  # incl. tax, yuan; negative on a red invoice
    amount_ex_tax: Decimal
    tax: Decimal


@dataclass(frozen=True)
class IssueRequest:
    """``red_of``: (invoice code, invoice number) of the blue invoice a red one reverses."""

    number: str
    red: bool
    buyer: Party
    seller: Party
    clerk: str
    invoice_line: str
    lines: tuple[IssueLine, ...]
    issued_on: datetime
    callback_url: str = ""
    remark: str = ""
    red_of: tuple[str, str] | None = None


@dataclass(frozen=True)
class IssueResult:
    """Where a request is at the provider: ``status`` PENDING, ISSUED or FAILED."""

    status: str
    serial: str = ""
    invoice_code: str = ""
    invoice_no: str = ""
    pdf_url: str = ""
    issued_at: datetime | None = None
    message: str = ""
    raw: dict = field(default_factory=dict, compare=False)


class ProviderError(Exception):
    """A call that did not succeed. ``unclear``: no clear answer (timeout, connection lost,
    5xx, garbage) — the request may or may not have been taken, so ask before sending again.
    Otherwise the provider refused it (``code``, message) and a resend would be refused too."""

    def __init__(self, message: str, *, code: str = "", unclear: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.unclear = unclear


class FapiaoProvider(Protocol):
    def issue(self, request: IssueRequest) -> IssueResult:
        """Hand the request over. Returns PENDING (accepted) or a final result. Raises
        ProviderError."""
        ...

    def query(self, number: str) -> IssueResult | None:
        """Where request ``number`` is; None when the provider has never heard of it.
        Raises ProviderError."""
        ...

    def callback_number(self, body: bytes, content_type: str) -> str | None:
        """Our request number named by a call-back body, or None if it names none."""
        ...
