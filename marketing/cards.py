"""Point cards (点卡): batches of numbered cards with secret PINs, redeemed into the wallet.

A PIN is stored only as HMAC-SHA256 keyed with the server's secret (a stolen database alone
does not let anyone test PINs offline), shown once when the batch is generated (the XLSX
for printing). A redemption locks the card row: a card credits the wallet once. Failed
attempts are counted per member in Redis: after ``MAX_FAILURES`` in ``FAIL_WINDOW_S`` the
member is refused (``too_many_attempts``) until the window passes.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.money import yuan
from settlement import services as ledger
from settlement.models import Account, Posting

from .common import MarketingError
from .models import PointCard, PointCardBatch

MAX_FAILURES = 5
FAIL_WINDOW_S = 3600
PIN_DIGITS = 12


def pin_hash(number: str, pin: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{number}:{pin}".encode(), hashlib.sha256).hexdigest()


def batch_generate(*, batch_id: int) -> list[tuple[str, str]]:
    """Make the batch's cards; returns [(number, PIN)], the only time the PINs exist in
    clear. Raises MarketingError cards_exist when the batch already has cards."""
    with transaction.atomic():
        batch = PointCardBatch.objects.select_for_update().get(pk=batch_id)
        if batch.cards.exists():
            raise MarketingError("cards_exist", _("This batch's cards were already generated."))
        made: list[tuple[str, str]] = []
        while len(made) < batch.count:
            number = f"{batch.pk % 10000:04d}{secrets.randbelow(10**12):012d}"
            pin = f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"
            try:
                with transaction.atomic():
                    PointCard.objects.create(batch=batch, number=number, pin_hash=pin_hash(number, pin))
            except IntegrityError:
                continue  # a number already taken: draw again
            made.append((number, pin))
    return made


def batch_xlsx(batch: PointCardBatch, cards: list[tuple[str, str]]) -> bytes:
    """The printable list: card number, PIN, face value, valid until."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "cards"
    sheet.append([_("Card number"), _("PIN"), _("Face value (yuan)"), _("Valid until")])
    until = timezone.localtime(batch.valid_until).strftime("%Y-%m-%d") if batch.valid_until else ""
    for number, pin in cards:
        sheet.append([number, pin, str(batch.face_value), until])
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 18
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def batch_set_status(*, batch_id: int, status: str) -> PointCardBatch:
    """Activate a generated batch or void a batch (its unredeemed cards stop working)."""
    with transaction.atomic():
        batch = PointCardBatch.objects.select_for_update().get(pk=batch_id)
        if status == PointCardBatch.Status.ACTIVE and (batch.status != PointCardBatch.Status.DRAFT or not batch.cards.exists()):
            raise MarketingError("batch_not_ready", _("Only a generated, inactive batch can be activated."))
        if status == PointCardBatch.Status.VOID and batch.status == PointCardBatch.Status.VOID:
            return batch
        batch.status = status
        batch.save(update_fields=["status"])
    return batch


def _fail_key(member) -> str:
    return f"marketing:card-fail:{member.pk}"


def card_redeem(*, member, number: str, pin: str) -> PointCard:
    """Redeem a card into the member's wallet (cash or bonus, as its batch says). Raises
    MarketingError too_many_attempts (429), card_invalid (an unknown number and a wrong PIN
    look the same), card_used, card_inactive, card_expired."""
    if (cache.get(_fail_key(member)) or 0) >= MAX_FAILURES:
        raise MarketingError("too_many_attempts", _("Too many wrong card numbers or PINs; try again later."), 429)
    number, pin = number.strip(), pin.strip()
    with transaction.atomic():
        card = PointCard.objects.select_for_update().select_related("batch").filter(number=number).first()
        if card is None or not hmac.compare_digest(card.pin_hash, pin_hash(number, pin)):
            cache.add(_fail_key(member), 0, FAIL_WINDOW_S)
            cache.incr(_fail_key(member))
            raise MarketingError("card_invalid", _("Wrong card number or PIN."))
        batch = card.batch
        if card.redeemed_at is not None:
            raise MarketingError("card_used", _("This card has already been redeemed."))
        if batch.status != PointCardBatch.Status.ACTIVE:
            raise MarketingError("card_inactive", _("This card is not active."))
        if batch.valid_until and batch.valid_until <= timezone.now():
            raise MarketingError("card_expired", _("This card has expired."))
        accounts = ledger.member_accounts(member)
        if batch.credit_as == PointCardBatch.CreditAs.CASH:
            source, target = ledger.system_account(Account.Kind.BANK), accounts.cash
        else:
            source, target = ledger.system_account(Account.Kind.PROMOTION), accounts.bonus
        amount = yuan(batch.face_value)
        ledger.posting_create(
            key=f"card:{card.number}", kind=Posting.Kind.CARD_REDEEM, lines=[(source, amount), (target, -amount)],
            member=member, ref=f"card:{card.number}", memo=f"point card {card.number}",
        )
        card.redeemed_by, card.redeemed_at = member, timezone.now()
        card.save(update_fields=["redeemed_by", "redeemed_at"])
    return card
