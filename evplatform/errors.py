"""The domain's one error family: a refusal with a stable code, a translated detail and the
HTTP status an API answers with.

Services raise a :class:`DomainError` (or a subclass naming its domain, e.g. charging's
``OrderRefused``); the API's exception handler (:mod:`evplatform.api.errors`) turns any of them
into ``{"code", "detail", "fields"}`` with ``status``, so views hold no try/except for them.
The admin shows ``detail`` as a message. Nothing here knows HTTP frameworks.
"""

from __future__ import annotations

__all__ = ["DomainError"]


class DomainError(Exception):
    """A request the rules refuse.

    ``code``: stable machine-readable string (``connector_busy``); ``detail``: a translated
    sentence; ``status``: the HTTP status an API answers with (default: the class's, 400);
    ``fields``: ``{field: [message, ...]}`` when the refusal is about given input fields.
    A subclass may fix ``code`` and ``status`` as class attributes and pass only ``detail``.
    """

    code: str = "refused"
    status: int = 400

    def __init__(
        self,
        code: str | None = None,
        detail: str = "",
        status: int | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail or code or self.code)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail
        self.fields = fields or {}

    def __str__(self) -> str:
        return str(self.detail or self.code)
