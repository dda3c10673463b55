"""Members (drivers) of one operator. Tenant schema."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Member(models.Model):
    """A driver of this operator, known by the WeChat openid of its mini-program."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DISABLED = "disabled", _("Disabled")

    openid = models.CharField(_("openid"), max_length=64, unique=True)
    unionid = models.CharField(_("unionid"), max_length=64, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    nickname = models.CharField(_("nickname"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_login_at = models.DateTimeField(_("last login"), null=True, blank=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.nickname or self.phone or self.openid

    # DRF treats request.user as a user object.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
