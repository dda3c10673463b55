from django import template

from .. import dashboard, reports

register = template.Library()


@register.simple_tag
def analytics_home(user) -> dict:
    """The operator's home figures for ``user`` (see analytics.dashboard.home)."""
    return dashboard.home(user)


@register.simple_tag
def report_menu(user) -> list[tuple[str, str]]:
    """The reports ``user`` may open, as (kind, title), for the home's report menu."""
    return list(reports.kind_titles(user).items())
