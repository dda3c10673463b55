"""The demo operator's interconnection partner: the fake CEC peer (``python -m
fakes.cec_peer``, started by ``make run``) as aggregator, regulator and infrastructure
partner: it sees every station of ours, and its own demo station is pulled into our station
search for our members to charge on: first soon after start-up
(:func:`demo_stations_pull_soon`, queued by ``manage.py seed_demo``), then by beat
``cec-partner-stations``. Development wiring
only."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

DEMO_CEC_URL = os.environ.get("FAKE_CEC_URL", "http://127.0.0.1:8805")
DEMO_CEC_PEER_ID = "MA1FAKE01"  # the fake peer's OperatorID (its --operator-id)
DEMO_CEC_OUR_ID = "MA5DEMO01"  # the demo operator's OperatorID (the peer's --our-id)
DEMO_CEC_SECRET = "1234567890abcdef"  # both sets (the peer's --secret), demo only


def demo_partner_configure(*, url: str = DEMO_CEC_URL) -> None:
    """Create or refresh the demo partner (in the current operator's schema)."""
    from protocols.cec.models import Partner

    s = DEMO_CEC_SECRET
    Partner.objects.update_or_create(operator_id=DEMO_CEC_PEER_ID, defaults={
        "name": "演示互联平台（模拟）", "our_operator_id": DEMO_CEC_OUR_ID,
        "in_operator_secret": s, "in_data_secret": s, "in_data_iv": s, "in_sig_secret": s,
        "out_operator_secret": s, "out_data_secret": s, "out_data_iv": s, "out_sig_secret": s,
        "base_url": url, "path_prefix": "/evcs/v1/", "is_customer_operator": True,
        "is_regulator": True, "is_infrastructure": True, "all_stations": True, "enabled": True,
    })


def demo_stations_pull_soon(operator) -> bool:
    """Queue ``cec.partner_stations_first_pull`` in ``operator``'s schema, so the fake peer's
    stations appear in search seconds after ``make run`` starts the worker and the peer
    (the task retries while the peer is not up yet). False, logged, when the broker could
    not take the message (the seed itself still stands)."""
    from django_tenants.utils import tenant_context
    from kombu.exceptions import OperationalError

    from protocols.cec.tasks import partner_stations_first_pull

    with tenant_context(operator):
        try:
            partner_stations_first_pull.apply_async(countdown=3)
        except OperationalError as exc:
            logger.warning("first partner stations pull not queued: %s", exc)
            return False
    return True
