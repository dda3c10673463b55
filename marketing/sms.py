"""Bulk SMS (群发短信): an audience from a segment (consented members only, each phone once),
sent in Celery chunks of the provider's batch size within the operator's rate limit, with
progress and cost on the campaign and delivery receipts pulled from the provider.

Consent: a member receives campaigns only after agreeing in the app (``sms_consent_set``)
and until opting out; a phone list import is matched against members the same way.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.queue import task_queue_on_commit
from settlement.models import Account

from .common import MarketingError
from .models import SmsCampaign, SmsConsent, SmsMessage, SmsSettings
from .sms_provider import SmsProviderError, sms_provider

CHUNK_TASK = "marketing.sms_send_chunk"
M = SmsMessage.Status


def sms_settings() -> SmsSettings:
    return SmsSettings.load()


def sms_configured(account: SmsSettings | None) -> bool:
    """Whether ``account`` can send: an app, a key pair and a signature."""
    return bool(account and account.sdk_app_id and account.secret_id and account.secret_key
                and account.sign_name)


def sms_account() -> SmsSettings | None:
    """The operator's SMS account if it can send, else None (nothing is created)."""
    account = SmsSettings.objects.order_by("pk").first()
    return account if sms_configured(account) else None


def sms_consent_set(*, member, consented: bool) -> SmsConsent:
    """The member agrees (True) or opts out (False)."""
    consent, _created = SmsConsent.objects.get_or_create(member=member)
    consent.consented = consented
    consent.opted_out_at = None if consented else timezone.now()
    consent.save(update_fields=["consented", "opted_out_at", "updated_at"])
    return consent


def audience(campaign: SmsCampaign):
    """Members of the campaign's segment who agreed to marketing SMS and have a phone."""
    members = Member.objects.filter(sms_consent__consented=True, sms_consent__opted_out_at__isnull=True).exclude(phone="")
    seg, now = campaign.segment, timezone.now()
    S = SmsCampaign.Segment
    if seg == S.INACTIVE:
        members = members.exclude(orders__created_at__gte=now - timedelta(days=campaign.inactive_days))
    elif seg == S.SVIP:
        members = members.filter(svip_purchases__status="paid", svip_purchases__starts_at__lte=now,
                                 svip_purchases__ends_at__gt=now)
    elif seg == S.STATION:
        members = members.filter(orders__station=campaign.station)
    elif seg == S.BALANCE:
        kinds = (Account.Kind.WALLET_CASH, Account.Kind.WALLET_BONUS)
        members = members.annotate(b=Sum("ledger_accounts__balance", filter=Q(ledger_accounts__kind__in=kinds))).filter(
            b__gt=campaign.min_balance)
    elif seg == S.PHONES:
        members = members.filter(phone__in=[p.strip() for p in campaign.phones.splitlines() if p.strip()])
    return members.distinct()


def sms_campaign_start(*, campaign_id: int) -> SmsCampaign:
    """Freeze the audience into messages and queue the chunks. Raises MarketingError
    sms_not_configured, sms_already_sent, sms_no_audience."""
    settings = sms_settings()
    if not sms_configured(settings):
        raise MarketingError("sms_not_configured", _("Set up the SMS account and signature first."))
    with transaction.atomic():
        campaign = SmsCampaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != SmsCampaign.Status.DRAFT:
            raise MarketingError("sms_already_sent", _("This campaign was already sent."))
        seen: dict[str, int] = {}
        for member_id, phone in audience(campaign).values_list("pk", "phone"):
            seen.setdefault(phone, member_id)
        if not seen:
            raise MarketingError("sms_no_audience", _("Nobody in this audience can receive SMS."))
        SmsMessage.objects.bulk_create(
            SmsMessage(campaign=campaign, member_id=mid, phone=phone) for phone, mid in seen.items()
        )
        campaign.status, campaign.total, campaign.started_at = SmsCampaign.Status.SENDING, len(seen), timezone.now()
        campaign.save(update_fields=["status", "total", "started_at"])
        batch = sms_provider(settings).max_batch
        ids = list(campaign.messages.order_by("pk").values_list("pk", flat=True))
        for i in range(0, len(ids), batch):
            task_queue_on_commit(CHUNK_TASK, campaign.pk, ids[i : i + batch])
    return campaign


def _rate_wait(settings: SmsSettings, count: int) -> float:
    """Seconds to wait before sending ``count`` messages within the per-second rate
    (a shared counter per operator and second in Redis); 0 when they may go now."""
    from django.db import connection

    second = int(time.time())
    key = f"marketing:sms-rate:{connection.schema_name}:{second}"
    cache.add(key, 0, 5)
    used = cache.incr(key, count)
    if used - count == 0 or used <= settings.rate_per_second:
        return 0.0
    cache.decr(key, count)
    return 1.0


def sms_send_chunk(*, campaign_id: int, message_ids: list[int]) -> float:
    """Send one chunk (queued messages only: a retried chunk sends nothing twice). Returns
    seconds to retry after when over the rate limit, else 0."""
    settings = sms_settings()
    with transaction.atomic():
        campaign = SmsCampaign.objects.get(pk=campaign_id)
        messages = list(SmsMessage.objects.select_for_update(skip_locked=True)
                        .filter(pk__in=message_ids, status=M.QUEUED).order_by("pk"))
        if not messages:
            return 0.0
        wait = _rate_wait(settings, len(messages))
        if wait:
            return wait
        try:
            results = sms_provider(settings).send(
                phones=[m.phone for m in messages], template_id=campaign.template.template_id,
                params=list(campaign.template.params or []), sign_name=settings.sign_name,
            )
        except SmsProviderError as exc:
            results = []
            error = str(exc)[:200]
        else:
            error = ""
        by_phone = {r.phone: r for r in results}
        now = timezone.now()
        sent = failed = billed = 0
        for m in messages:
            r = by_phone.get(m.phone)
            if r is not None and r.ok:
                m.status, m.serial_no, m.fee, m.sent_at = M.SENT, r.serial_no, r.fee, now
                sent += 1
                billed += r.fee
            else:
                m.status, m.error = M.FAILED, (r.error if r else error or "no answer for this number")[:200]
                failed += 1
        SmsMessage.objects.bulk_update(messages, ["status", "serial_no", "fee", "sent_at", "error"])
        SmsCampaign.objects.filter(pk=campaign.pk).update(
            sent=F("sent") + sent, failed=F("failed") + failed, billed=F("billed") + billed,
            cost=F("cost") + Decimal(billed) * settings.price_per_message,
        )
        _finish_if_done(campaign.pk)
    return 0.0


def _finish_if_done(campaign_id: int) -> None:
    if not SmsMessage.objects.filter(campaign_id=campaign_id, status=M.QUEUED).exists():
        SmsCampaign.objects.filter(pk=campaign_id, status=SmsCampaign.Status.SENDING).update(
            status=SmsCampaign.Status.DONE, finished_at=timezone.now())


def sms_pull_receipts() -> int:
    """Fetch delivery receipts from the provider and record them. Returns how many matched."""
    settings = sms_settings()
    if not (settings.sdk_app_id and settings.secret_id):
        return 0
    if not SmsMessage.objects.filter(status=M.SENT).exists():
        return 0
    matched = 0
    try:
        receipts = sms_provider(settings).receipts(limit=100)
    except SmsProviderError:
        return 0
    for receipt in receipts:
        with transaction.atomic():
            message = SmsMessage.objects.select_for_update().filter(serial_no=receipt.serial_no, status=M.SENT).first()
            if message is None:
                continue
            message.status = M.DELIVERED if receipt.delivered else M.UNDELIVERED
            message.receipt_at = timezone.now()
            if not receipt.delivered:
                message.error = receipt.description[:200]
            message.save(update_fields=["status", "receipt_at", "error"])
            if receipt.delivered:
                SmsCampaign.objects.filter(pk=message.campaign_id).update(delivered=F("delivered") + 1)
            matched += 1
    return matched


def sms_progress(campaign: SmsCampaign) -> dict:
    """What the admin shows: counts per status and the share done."""
    counts = dict(campaign.messages.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    done = campaign.total - counts.get(M.QUEUED, 0)
    return {"counts": counts, "percent": round(100 * done / campaign.total) if campaign.total else 0}
