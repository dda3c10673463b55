"""Alarms: raised from pile faults and the operator's rules, grouped, rate-limited, sent to
the on-duty staff, acknowledged and closed by staff or cleared when the cause ends.

Raising (:func:`alarm_raise`) groups by a key (kind, pile, connector, cause): while an alarm
of that key is not closed a repeat only counts (``occurrences``, ``last_at``) and is sent
again at most every ``AlarmSettings.repeat_after_min``. Sending (:func:`alarm_notify`, a
queued task) goes to every enabled group robot (企业微信 / 钉钉 webhook), and to every
on-duty contact by WeChat subscribe message (openid) and SMS (phone; the operator's
Tencent Cloud SMS account, ``marketing.sms_provider``, with the alarm template of
``AlarmSettings.sms_template_id``), within
``max_notifications_per_hour`` per operator (a Redis counter); what is held back is
recorded and said in the next notification that goes out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from charging.models import ChargingOrder
from evplatform.errors import DomainError
from evplatform.queue import task_queue_on_commit
from marketing.sms import sms_account
from marketing.sms_provider import SmsProviderError, sms_provider
from stations import live
from stations.models import Connector, Fault, Pile, Station

from .models import Alarm, AlarmDelivery, AlarmSettings, AlarmWebhook, DutyContact

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"minor": 1, "major": 2, "critical": 3}
WEBHOOK_TIMEOUT_S = 5


class AlarmError(DomainError):
    pass


def _label(alarm: Alarm) -> str:
    if alarm.pile is None:
        return alarm.station.name
    where = alarm.pile.code if alarm.connector is None else f"{alarm.pile.code}/{alarm.connector.number}号枪"
    return f"{alarm.station.name} {where}"


def alarm_raise(*, kind: str, severity: str, title: str, pile: Pile | None, group_key: str,
                connector: Connector | None = None, fault: Fault | None = None,
                at: datetime | None = None, station: Station | None = None
                ) -> tuple[Alarm, bool]:
    """Raise an alarm, or count a repeat of the open one with the same ``group_key``; on
    ``pile`` (its station's) or, for a station-wide rule, on ``station`` with no pile.
    Returns (alarm, notify queued). Runs in its own transaction savepoint."""
    at = at or timezone.now()
    conf = AlarmSettings.load()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                alarm = (Alarm.objects.select_for_update()
                         .filter(group_key=group_key).exclude(status=Alarm.Status.CLOSED).first())
                if alarm is None:
                    alarm = Alarm.objects.create(
                        kind=kind, severity=severity, title=title[:200], group_key=group_key,
                        station_id=pile.station_id if pile is not None else station.pk,
                        pile=pile, connector=connector, fault=fault,
                        first_at=at, last_at=at)
                    task_queue_on_commit("operations.alarm_notify", alarm.pk)
                    return alarm, True
                alarm.occurrences += 1
                alarm.last_at = max(alarm.last_at, at)
                if fault is not None:
                    alarm.fault = fault
                if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(alarm.severity, 0):
                    alarm.severity = severity
                alarm.save(update_fields=["occurrences", "last_at", "fault", "severity"])
                due = (conf.repeat_after_min and alarm.notified_at is not None
                       and at - alarm.notified_at >= timedelta(minutes=conf.repeat_after_min)
                       and alarm.status == Alarm.Status.OPEN)
                if due:
                    task_queue_on_commit("operations.alarm_notify", alarm.pk)
                return alarm, bool(due)
        except IntegrityError:  # another process opened this group at the same moment
            continue
    raise AlarmError("alarm_conflict", "The alarm group changed twice meanwhile.", 409)


def alarm_clear(*, group_key: str, at: datetime | None = None) -> int:
    """The cause ended: the group's alarm closes by itself (acknowledged or not)."""
    at = at or timezone.now()
    return (Alarm.objects.filter(group_key=group_key).exclude(status=Alarm.Status.CLOSED)
            .update(status=Alarm.Status.CLOSED, closed_at=at, auto_cleared=True))


# --- rules -------------------------------------------------------------------------------


def fault_group(fault: Fault) -> str:
    return f"fault:{fault.pile.code}:{fault.connector.number if fault.connector else 0}:{fault.code}"


def fault_opened(*, fault_id: int) -> Alarm | None:
    """A pile reported a fault: an alarm when its severity reaches the operator's level."""
    fault = Fault.objects.select_related("pile__station", "connector").filter(pk=fault_id).first()
    if fault is None or fault.cleared_at is not None:
        return None
    conf = AlarmSettings.load()
    if SEVERITY_RANK.get(fault.severity, 2) < SEVERITY_RANK[conf.fault_min_severity]:
        return None
    where = fault.pile.code if fault.connector is None else f"{fault.pile.code} {fault.connector.number}号枪"
    alarm, _sent = alarm_raise(
        kind=Alarm.Kind.FAULT, severity=fault.severity,
        title=f"{where}：{fault.description}", pile=fault.pile, connector=fault.connector,
        fault=fault, group_key=fault_group(fault), at=fault.started_at)
    return alarm


def fault_cleared(*, fault_id: int) -> int:
    fault = Fault.objects.select_related("pile", "connector").filter(pk=fault_id).first()
    if fault is None or fault.cleared_at is None:
        return 0
    return alarm_clear(group_key=fault_group(fault), at=fault.cleared_at)


def alarms_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic rules: piles offline longer than ``offline_after_min``, connectors in
    finishing longer than ``finishing_stuck_min``; alarms of either whose cause ended are
    cleared. Returns counts {"raised", "cleared"}."""
    now = now or timezone.now()
    conf = AlarmSettings.load()
    raised = cleared = 0
    open_keys = set(Alarm.objects.exclude(status=Alarm.Status.CLOSED)
                    .filter(kind__in=[Alarm.Kind.OFFLINE, Alarm.Kind.STUCK_FINISHING])
                    .values_list("group_key", flat=True))
    live_keys: set[str] = set()
    if conf.offline_after_min:
        limit = now - timedelta(minutes=conf.offline_after_min)
        for fault in (Fault.objects.select_related("pile__station")
                      .filter(source=Fault.Source.OFFLINE, cleared_at__isnull=True,
                              started_at__lte=limit, pile__enabled=True)):
            key = f"offline:{fault.pile.code}"
            live_keys.add(key)
            if key in open_keys:
                continue
            minutes = int((now - fault.started_at).total_seconds() // 60)
            alarm_raise(kind=Alarm.Kind.OFFLINE, severity=Alarm.Severity.MAJOR,
                        title=_("%(pile)s offline for %(n)d min") % {"pile": fault.pile.code, "n": minutes},
                        pile=fault.pile, fault=fault, group_key=key, at=now)
            raised += 1
    if conf.finishing_stuck_min:
        limit = now - timedelta(minutes=conf.finishing_stuck_min)
        for connector in (Connector.objects.select_related("pile__station")
                          .filter(status=Connector.Status.FINISHING, status_changed_at__lte=limit)):
            key = f"stuck:{connector.pile.code}:{connector.number}"
            live_keys.add(key)
            if key in open_keys:
                continue
            alarm_raise(kind=Alarm.Kind.STUCK_FINISHING, severity=Alarm.Severity.MINOR,
                        title=_("%(pile)s connector %(no)d stuck in finishing") % {
                            "pile": connector.pile.code, "no": connector.number},
                        pile=connector.pile, connector=connector, group_key=key, at=now)
            raised += 1
    for key in open_keys - live_keys:
        cleared += alarm_clear(group_key=key, at=now)
    return {"raised": raised, "cleared": cleared}


def revenue_watch(*, now: datetime | None = None) -> dict[str, int]:
    """The rule "a station's revenue dropping to zero" (a periodic job): a station whose
    settled orders total nothing (yuan) in the last ``revenue_zero_hours`` hours but did in
    the same span before raises a major alarm (one open per station, group
    ``revenue:{station code}``); it clears itself once the station earns again. Off when
    ``revenue_zero_hours`` is 0. Returns counts {"raised", "cleared"}."""
    now = now or timezone.now()
    hours = AlarmSettings.load().revenue_zero_hours
    open_alarms = {a.group_key: a for a in Alarm.objects.exclude(status=Alarm.Status.CLOSED)
                   .filter(kind=Alarm.Kind.REVENUE_ZERO)}
    if not hours:
        return {"raised": 0, "cleared": 0}
    span = timedelta(hours=hours)

    def earned(start: datetime, end: datetime) -> set[int]:
        return set(ChargingOrder.objects.filter(
            settled_at__gte=start, settled_at__lt=end, total_amount__gt=0)
            .values_list("station_id", flat=True).distinct())

    now_earning, before = earned(now - span, now), earned(now - 2 * span, now - span)
    raised = cleared = 0
    for station in Station.objects.filter(pk__in=before - now_earning):
        key = f"revenue:{station.code}"
        if key in open_alarms:
            continue
        alarm_raise(kind=Alarm.Kind.REVENUE_ZERO, severity=Alarm.Severity.MAJOR,
                    title=_("%(station)s earned nothing in %(n)d h") % {
                        "station": station.name, "n": hours},
                    pile=None, station=station, group_key=key, at=now)
        raised += 1
    for key, alarm in open_alarms.items():
        if alarm.station_id in now_earning:
            cleared += alarm_clear(group_key=key, at=now)
    return {"raised": raised, "cleared": cleared}


# --- staff -------------------------------------------------------------------------------


def alarm_acknowledge(*, alarm_id: int, user, note: str = "") -> Alarm:
    """Staff saw it and are on it: no more repeats are sent while it is acknowledged."""
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update().get(pk=alarm_id)
        if alarm.status != Alarm.Status.OPEN:
            raise AlarmError("alarm_not_open", _("Only an open alarm can be acknowledged."), 409)
        alarm.status = Alarm.Status.ACKNOWLEDGED
        alarm.acknowledged_at = timezone.now()
        alarm.acknowledged_by = user
        if note:
            alarm.note = f"{alarm.note}\n{note}".strip()
        alarm.save()
        audit.record(user, "alarm.acknowledge", alarm, detail=note)
    return alarm


def alarm_close(*, alarm_id: int, user, note: str = "") -> Alarm:
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update().get(pk=alarm_id)
        if alarm.status == Alarm.Status.CLOSED:
            raise AlarmError("alarm_closed", _("The alarm is closed already."), 409)
        alarm.status = Alarm.Status.CLOSED
        alarm.closed_at = timezone.now()
        alarm.closed_by = user
        if note:
            alarm.note = f"{alarm.note}\n{note}".strip()
        alarm.save()
        audit.record(user, "alarm.close", alarm, detail=note)
    return alarm


# --- sending -----------------------------------------------------------------------------


def _rate_key() -> str:
    hour = timezone.now().strftime("%Y%m%d%H")
    return f"{settings.REDIS_KEY_PREFIX}:{connection.schema_name}:alarms:sent:{hour}"


def _held_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{connection.schema_name}:alarms:held"


def _take_slot(limit: int) -> bool:
    r = live.client()
    pipe = r.pipeline()
    pipe.incr(_rate_key())
    pipe.expire(_rate_key(), 3700)
    count, _ok = pipe.execute()
    return count <= limit


def _parts(alarm: Alarm, held: int) -> tuple[list[str], list[str]]:
    """The alarm as (level, alarm, station, local time) and its notes (repeats, what the
    rate limit held back). The group robots get them as lines; SMS as the parameters
    {1}…{5} of the operator's alarm template, {5} the notes (``-`` when none)."""
    local = timezone.localtime(alarm.last_at)
    notes = []
    if alarm.occurrences > 1:
        notes.append(_("Repeated %(n)d times") % {"n": alarm.occurrences})
    if held:
        notes.append(_("%(n)d more alarms were held back by the rate limit; see the admin.") % {"n": held})
    return ([str(alarm.get_severity_display()), alarm.title, alarm.station.name,
             f"{local:%Y-%m-%d %H:%M:%S}"], notes)


def _text(head: list[str], notes: list[str]) -> str:
    level, title, station, at = head
    return "\n".join([f"【{level}告警】{title}", f"{_('Station')}：{station}", f"{_('Time')}：{at}", *notes])


def alarm_notify(*, alarm_id: int) -> list[AlarmDelivery]:
    """Send the alarm to every channel (a queued task, ``operations.alarm_notify``).
    Returns the deliveries recorded. A closed or acknowledged alarm is not sent."""
    alarm = (Alarm.objects.select_related("station", "pile", "connector", "fault")
             .filter(pk=alarm_id).first())
    if alarm is None or alarm.status != Alarm.Status.OPEN:
        return []
    conf = AlarmSettings.load()
    if not _take_slot(conf.max_notifications_per_hour):
        live.client().incr(_held_key())
        return [AlarmDelivery.objects.create(alarm=alarm, channel=AlarmDelivery.Channel.WEBHOOK,
                                             target="*", ok=False, error="rate_limited")]
    held = int(live.client().getdel(_held_key()) or 0)
    head, notes = _parts(alarm, held)
    text = _text(head, notes)
    out = []
    for hook in AlarmWebhook.objects.filter(enabled=True):
        out.append(_webhook_send(alarm, hook, text))
    contacts = list(DutyContact.objects.filter(on_duty=True))
    for contact in contacts:
        if contact.openid:
            out.append(_wechat_send(alarm, contact, conf))
    out += _sms_send(alarm, [c for c in contacts if c.phone], [*head, " ".join(notes) or "-"], conf)
    Alarm.objects.filter(pk=alarm.pk).update(notified_at=timezone.now())
    return out


def _webhook_send(alarm: Alarm, hook: AlarmWebhook, text: str) -> AlarmDelivery:
    # 企业微信 and 钉钉 group robots both take {"msgtype": "text", "text": {"content"}}.
    body = {"msgtype": "text", "text": {"content": text}}
    error = ""
    try:
        response = requests.post(hook.url, json=body, timeout=WEBHOOK_TIMEOUT_S)
        data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200:
            error = f"HTTP {response.status_code}"
        elif data.get("errcode", 0) != 0:
            error = f"{data.get('errcode')}: {data.get('errmsg', '')}"[:300]
    except (requests.RequestException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    return AlarmDelivery.objects.create(alarm=alarm, channel=AlarmDelivery.Channel.WEBHOOK,
                                        target=hook.name, ok=not error, error=error)


def _short(alarm: Alarm) -> str:
    """The alarm in at most 20 characters (a subscribe message's ``thing`` limit)."""
    what = alarm.fault.description if alarm.fault and alarm.kind == Alarm.Kind.FAULT else \
        alarm.get_kind_display()
    where = alarm.pile.code[-6:] if alarm.pile is not None else alarm.station.name[:8]
    return f"{where} {what}"[:20]


def _wechat_send(alarm: Alarm, contact: DutyContact, conf: AlarmSettings) -> AlarmDelivery:
    from accounts import wechat
    from tenants.models import MiniProgram

    mini_program = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    error = ""
    if not conf.wechat_template_id or mini_program is None:
        error = "no_template"
    else:
        local = timezone.localtime(alarm.last_at)
        try:
            wechat.subscribe_message_send(
                mini_program, openid=contact.openid, template_id=conf.wechat_template_id,
                data={"thing1": {"value": _short(alarm)},
                      "thing2": {"value": alarm.station.name[:20]},
                      "time3": {"value": f"{local:%Y-%m-%d %H:%M}"},
                      "phrase4": {"value": str(alarm.get_severity_display())[:5]}})
        except wechat.WeChatError as exc:
            error = str(exc)[:300]
    return AlarmDelivery.objects.create(alarm=alarm, channel=AlarmDelivery.Channel.WECHAT,
                                        target=contact.name, ok=not error, error=error)


def _sms_send(alarm: Alarm, contacts: list[DutyContact], params: list[str],
              conf: AlarmSettings) -> list[AlarmDelivery]:
    """One SendSms call for every contact's phone through the operator's SMS account
    (marketing's Tencent Cloud SMS client), the alarm template with ``params`` as {1}…{5}.
    A refusal or an unreachable provider is each contact's failed delivery, never raised."""
    if not contacts:
        return []
    results: dict[str, tuple[bool, str]] = {}
    error = ""
    account = sms_account()
    if account is None:
        error = "no_sms_provider"
    elif not conf.sms_template_id:
        error = "no_sms_template"
    else:
        phones = list(dict.fromkeys(c.phone for c in contacts))
        provider = sms_provider(account)
        try:
            for i in range(0, len(phones), provider.max_batch):
                for sent in provider.send(phones=phones[i:i + provider.max_batch], params=params,
                                          template_id=conf.sms_template_id, sign_name=account.sign_name):
                    results[sent.phone] = (sent.ok, sent.error[:300])
        except SmsProviderError as exc:
            error = str(exc)[:300]
    out = []
    for contact in contacts:
        ok, said = results.get(contact.phone, (False, error or "no_sms_result"))
        out.append(AlarmDelivery.objects.create(alarm=alarm, channel=AlarmDelivery.Channel.SMS,
                                                target=contact.name, ok=ok, error=said))
    return out
