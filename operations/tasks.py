"""Celery tasks of operations: each runs inside one operator's schema."""

from __future__ import annotations

from evplatform.celery import app

from . import alarms


@app.task(name="operations.fault_opened")
def fault_opened(fault_id: int) -> int | None:
    alarm = alarms.fault_opened(fault_id=fault_id)
    return alarm.pk if alarm else None


@app.task(name="operations.fault_cleared")
def fault_cleared(fault_id: int) -> int:
    return alarms.fault_cleared(fault_id=fault_id)


@app.task(name="operations.alarm_notify", autoretry_for=(), max_retries=0)
def alarm_notify(alarm_id: int) -> int:
    return len(alarms.alarm_notify(alarm_id=alarm_id))


@app.task(name="operations.alarms_evaluate")
def alarms_evaluate() -> dict:
    """The periodic alarm rules (offline, stuck in finishing) and their clearing."""
    return alarms.alarms_evaluate()


@app.task(name="operations.revenue_watch")
def revenue_watch() -> dict:
    """The "station revenue dropped to zero" alarm rule (``alarms.revenue_watch``)."""
    return alarms.revenue_watch()


@app.task(name="operations.feedback_reply_notify", bind=True, max_retries=5)
def feedback_reply_notify(self, reply_id: int) -> str:
    from accounts.wechat import WeChatError

    from . import feedback

    try:
        return feedback.feedback_reply_notify(reply_id=reply_id)
    except WeChatError as exc:
        raise self.retry(exc=exc, countdown=60) from exc


@app.task(name="operations.chat_offline_notify", bind=True, max_retries=5)
def chat_offline_notify(self, conversation_id: int) -> str:
    from accounts.wechat import WeChatError

    from . import chat

    try:
        return chat.chat_offline_notify(conversation_id=conversation_id)
    except WeChatError as exc:
        raise self.retry(exc=exc, countdown=60) from exc
