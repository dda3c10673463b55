"""Celery tasks of marketing: take ids, call a service (queued on commit, with the schema)."""

from __future__ import annotations

from evplatform.celery import app

from . import points, sms


@app.task(name="marketing.sms_send_chunk", bind=True, max_retries=None)
def sms_send_chunk_task(self, campaign_id: int, message_ids: list[int]) -> None:
    wait = sms.sms_send_chunk(campaign_id=campaign_id, message_ids=message_ids)
    if wait:
        raise self.retry(countdown=wait)


@app.task(name="marketing.sms_pull_receipts")
def sms_pull_receipts_task() -> int:
    """The periodic job for one operator: record the SMS delivery receipts."""
    return sms.sms_pull_receipts()


@app.task(name="marketing.points_expire")
def points_expire_task() -> int:
    """The periodic job for one operator: expire points past their date."""
    return points.points_expire()


__all__ = ["sms_send_chunk_task", "sms_pull_receipts_task", "points_expire_task"]
