"""What the operator's home and the big screen show, as JSON-ready dicts (numbers as
floats rounded for display; the money figures were rounded by the money module when the
aggregates were built). Scoped to the stations the user may see."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from stations.selectors import stations_visible_to

from . import selectors
from .services import operator_zone


def _f(value, places: int = 2) -> float:
    return round(float(value or 0), places)


def home(user) -> dict:
    """Today vs yesterday, 30-day trend, revenue by TOU period, ranking, map, live counts."""
    stations = stations_visible_to(user)
    today = selectors.local_today()
    yesterday = today - timedelta(days=1)
    t, y = selectors.day_totals(stations, today), selectors.day_totals(stations, yesterday)
    live = selectors.live_state(stations)
    start = today - timedelta(days=29)
    ranking = selectors.station_ranking(stations, start, today)
    periods = selectors.revenue_by_period(stations, start, today)
    return {
        "today": today.isoformat(),
        "cards": {
            "energy_kwh": [_f(t["energy_kwh"], 1), _f(y["energy_kwh"], 1)],
            "total_yuan": [_f(t["total_yuan"]), _f(y["total_yuan"])],
            "orders": [t["orders"], y["orders"]],
        },
        "piles": live["piles"],
        "piles_online": live["piles_online"],
        "charging_now": live["statuses"].get("charging", 0),
        "faults_open": selectors.faults_open(stations),
        "trend": [{"day": d["day"].strftime("%m-%d"), "energy_kwh": _f(d["energy_kwh"], 1),
                   "total_yuan": _f(d["total_yuan"]), "orders": d["orders"]}
                  for d in selectors.daily_trend(stations, start, today)],
        "periods": {p: {"energy_kwh": _f(v["energy_kwh"], 1), "revenue_yuan": _f(v["revenue_yuan"])}
                    for p, v in periods.items()},
        "top": [_station(r) for r in ranking[:5]],
        "bottom": [_station(r) for r in ranking[-5:][::-1]] if len(ranking) > 5 else [],
        "stations": live["stations"],
    }


def _station(r: dict) -> dict:
    return {"name": r["name"], "total_yuan": _f(r["total_yuan"]), "energy_kwh": _f(r["energy_kwh"], 1),
            "orders": r["orders"], "utilisation": round(r["utilisation"] * 100, 1)}


def screen(user) -> dict:
    """The big screen's whole state (sent on connect and whenever it changes)."""
    stations = stations_visible_to(user)
    today = selectors.local_today()
    t = selectors.day_totals(stations, today)
    live = selectors.live_state(stations)
    zone = operator_zone()
    return {
        "today": today.isoformat(),
        "energy_kwh": _f(t["energy_kwh"], 1),
        "total_yuan": _f(t["total_yuan"]),
        "orders": t["orders"],
        "power_kw": _f(live["power_kw"], 1),
        "piles": live["piles"],
        "piles_online": live["piles_online"],
        "statuses": live["statuses"],
        "stations": live["stations"],
        "curve": [{"hour": h["hour"].strftime("%H:00"), "power_kw": _f(h["power_kw"], 1)}
                  for h in selectors.hourly_power(stations, today)],
        "alarms": [{"at": a["at"].astimezone(zone).strftime("%m-%d %H:%M"), "station": a["station"],
                    "pile": a["pile"], "text": a["description"] or a["code"], "open": a["open"]}
                   for a in selectors.alarms_recent(stations)],
        "top": [_station(r) for r in selectors.station_ranking(stations, today, today)[:5]],
        "power": [dict(p, at=p["at"].astimezone(zone).strftime("%H:%M:%S") if p["at"] else "")
                  for p in selectors.power_plans(stations)],
        "at": timezone.now().astimezone(zone).strftime("%H:%M:%S"),
    }
