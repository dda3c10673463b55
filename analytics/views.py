"""The monitoring big screen (``/bigscreen/``) and the report pages (``/reports/``) on the
operator's host, for staff who may use the admin."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from stations.selectors import stations_visible_to

from . import reports, selectors


def bigscreen(request):
    """1920 × 1080 dark screen; its data arrives over ``/ws/bigscreen/``."""
    if not admin.site.has_permission(request):
        return redirect_to_login(request.get_full_path(), "admin:login")
    return render(request, "analytics/bigscreen.html", {"site_header": admin.site.site_header})


ROWS_PER_PAGE = 100


def _date(value: str | None, default):
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def report_page(request):
    """``/reports/?kind=charging|revenue|members|<registered>&from=YYYY-MM-DD&to=…&station=ID&owner=ID``,
    ``&page=N`` (ROWS_PER_PAGE rows a page), ``&format=xlsx`` for the whole range as a
    spreadsheet. Bad dates or a range over a year: 400 with the reason shown. Station owners
    see only their stations."""
    if not admin.site.has_permission(request):
        return redirect_to_login(request.get_full_path(), "admin:login")
    today = selectors.local_today()
    kind = request.GET.get("kind") or "charging"
    start = _date(request.GET.get("from"), today - timedelta(days=29))
    end = _date(request.GET.get("to"), today)
    visible = stations_visible_to(request.user)
    stations = visible
    station_id, owner_id = request.GET.get("station") or "", request.GET.get("owner") or ""
    error = ""
    titles = reports.kind_titles(request.user)
    if kind not in titles:
        error = _("Unknown report.")
    elif start is None or end is None:
        error = _("Give dates as YYYY-MM-DD.")
    elif end < start or (end - start).days >= reports.MAX_DAYS:
        error = _("The range must run forwards and cover at most a year.")
    elif (station_id and not station_id.isdigit()) or (owner_id and not owner_id.isdigit()):
        error = _("Unknown station or owner.")
    if not error:
        if station_id:
            stations = stations.filter(pk=int(station_id))
        if owner_id:
            stations = stations.filter(owners__pk=int(owner_id))
        columns, rows = reports.report(kind, stations, start, end)
        title = titles[kind]
        if request.GET.get("format") == "xlsx":
            response = HttpResponse(
                reports.xlsx(title, columns, rows),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            response["Content-Disposition"] = f'attachment; filename="{kind}-{start}-{end}.xlsx"'
            return response
    else:
        columns, rows, title = [], [], _("Reports")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    others = request.GET.copy()
    others.pop("page", None)
    owners = get_user_model().objects.filter(owned_stations__in=visible).distinct().order_by("username")
    context = {
        **admin.site.each_context(request), "title": title, "kinds": titles.items(),
        "by_station": kind in reports.KINDS or bool((entry := reports.registered(kind)) and entry.by_station),
        "kind": kind, "start": start or "", "end": end or "", "stations": visible.order_by("name"),
        "owners": owners, "station_id": station_id, "owner_id": owner_id, "columns": columns, "rows": page.object_list,
        "page": page, "row_count": len(rows), "error": error, "query": others.urlencode(),
    }
    return render(request, "analytics/report.html", context, status=400 if error else 200)
