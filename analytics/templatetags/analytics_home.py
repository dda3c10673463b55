from django import template

from .. import dashboard

register = template.Library()


@register.simple_tag
def analytics_home(user) -> dict:
    """The operator's home figures for ``user`` (see analytics.dashboard.home)."""
    return dashboard.home(user)
