"""Settings of the benchmarks' servers: the project's, plus the previous design of the
station list mounted for a same-run baseline (benchmarks/support/previous_station_list.py)."""

from evplatform.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.support.previous_station_list"
