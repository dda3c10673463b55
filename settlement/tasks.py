"""Celery tasks of settlement: take ids, call a service (queued on commit, with the schema)."""

from __future__ import annotations

from evplatform.celery import app

from . import statements


@app.task(name="settlement.statements_build_due")
def statements_build_due_task() -> list[str]:
    """The periodic job for one operator: build every owner's statement that is due."""
    return [s.number for s in statements.statements_build_due()]


__all__ = ["statements_build_due_task"]
