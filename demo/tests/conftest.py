"""The whole platform in one test process, on real sockets: the ASGI app under uvicorn
(HTTP + WebSocket), the YKC and OCPP gateways, simulated piles of both protocols, a Celery
worker on the real broker, and the fake WeChat and WeChat Pay servers — with the demo
operator seeded (committed) and removed afterwards."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import connection

from evplatform.tests.helpers import Uvicorn

SIM_TIME_SCALE = 60  # a simulated minute of charging per real second
# OCPP piles stamp StartTransaction as it happens, so a sped-up session's energy would not
# fit its duration (and the order is held for review): they charge in real time, reporting
# every few seconds.
OCPP_METER_INTERVAL_S = 3


class Simulator:
    """Simulated piles (protocols.ykc.simulator) on their own event loop."""

    def __init__(self, codes_and_guns: list[tuple[str, int, float]], port: int) -> None:
        from protocols.ykc.simulator import SimulatedPile, scenario

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.piles: dict[str, SimulatedPile] = {}

        async def start():
            for code, guns, kw in codes_and_guns:
                pile = SimulatedPile(code, "127.0.0.1", port, connectors=guns, power_kw=kw,
                                     time_scale=SIM_TIME_SCALE)
                self.piles[code] = pile
                asyncio.create_task(pile.run())
                asyncio.create_task(scenario(pile, "demo"))

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def call(self, fn, *args):
        async def wrapper():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    def stop(self) -> None:
        for pile in self.piles.values():
            self.loop.call_soon_threadsafe(pile.stop)
        time.sleep(0.2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Platform:
    web: Uvicorn
    wechat: object
    pay: object
    gateway: object
    simulator: Simulator
    operator: object
    ocpp_gateway: object = None
    ocpp_simulator: object = None
    ocpp_piles: dict | None = None



@pytest.fixture(scope="module")
def platform(operators, django_db_blocker, tmp_path_factory):
    from celery.contrib.testing.worker import start_worker
    from django.db import connections
    from django_tenants.utils import schema_context

    from demo.seed import DEMO_APPID, DEMO_MCHID, seed_demo_operator
    from evplatform.celery import app
    from fakes import wechat_api, wechatpay
    from protocols.tests.helpers import GatewayThread, wait_for
    from protocols.tests.ocpp_helpers import OcppGatewayThread, SimLoop
    from stations.models import Connector, Pile

    key_dir = tmp_path_factory.mktemp("fake_wechatpay")
    saved = (settings.WECHAT_API_BASE_URL, settings.WECHATPAY_API_BASE_URL)
    # The server's request threads close their connections after each request (the tests
    # run without the Procfile's pool), so none is left open between tests.
    db_settings = connections.settings["default"]
    saved_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0
    with django_db_blocker.unblock():
        wechat = wechat_api.start_in_thread()
        pay = wechatpay.start_in_thread(key_dir=key_dir)
        settings.WECHAT_API_BASE_URL = wechat.url + "/"
        settings.WECHATPAY_API_BASE_URL = pay.url
        web = Uvicorn()
        connection.set_schema_to_public()  # whatever schema an earlier test left set
        info = seed_demo_operator(key_dir=key_dir, notify_base_url=web.url)
        merchant = wechatpay.load_or_create_demo_merchant(key_dir, DEMO_MCHID, DEMO_APPID)
        pay.register_merchant(
            DEMO_MCHID, [DEMO_APPID], merchant.apiv3_key,
            merchant_public_key=merchant.public_key_pem, merchant_serial_no=merchant.serial_no,
        )
        connection.set_schema_to_public()
        gateway = GatewayThread()
        ocpp_gateway = OcppGatewayThread()
        with schema_context(info.operator.schema_name):
            rows = Pile.objects.values_list("code", "connector_count", "rated_power_kw", "protocol")
            piles = [(code, guns, float(kw) / guns) for code, guns, kw, protocol in rows
                     if protocol == "ykc"]
            ocpp_codes = [(code, guns, float(kw) / guns) for code, guns, kw, protocol in rows
                          if protocol == "ocpp"]
        simulator = Simulator(piles, gateway.port)
        ocpp_simulator = SimLoop()
        ocpp_piles = {code: ocpp_simulator.pile(code, ocpp_gateway.url, connectors=guns,
                                                power_kw=kw, meter_interval_s=OCPP_METER_INTERVAL_S)
                      for code, guns, kw in ocpp_codes}
        for pile in ocpp_piles.values():
            ocpp_simulator.online(pile)
            for number in pile.connectors:
                ocpp_simulator.run(pile.plug, number)  # the "demo" scenario: plugged in
        with schema_context(info.operator.schema_name):
            wait_for(lambda: Pile.objects.filter(online=True).count() == len(rows), timeout=30)
            wait_for(lambda: not Pile.objects.filter(connectors__status="offline").exists(), timeout=30)
            # The "demo" scenario plugs a car into every connector: the platform has heard
            # it (a partner's start needs a plugged gun) before any test begins.
            wait_for(lambda: not Connector.objects.exclude(status="plugged").exists(), timeout=30)
        connection.set_schema_to_public()
        with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False,
                          loglevel="WARNING"):
            yield Platform(web, wechat, pay, gateway, simulator, info.operator, ocpp_gateway,
                           ocpp_simulator, ocpp_piles)
        simulator.stop()
        ocpp_simulator.stop()
        gateway.stop()
        ocpp_gateway.stop()
        web.stop()
        pay.shutdown()
        wechat.shutdown()
        settings.WECHAT_API_BASE_URL, settings.WECHATPAY_API_BASE_URL = saved
        connection.set_schema_to_public()
        info.operator.delete(force_drop=True)
        from demo.seed import DEMO_COMPONENT
        from tenants.models import OpenPlatform

        OpenPlatform.objects.filter(component_appid=DEMO_COMPONENT["component_appid"]).delete()
        db_settings["CONN_MAX_AGE"] = saved_max_age
        # Threads of the servers above may still hold idle connections: end them, so the
        # test database can be dropped at the end of the session.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
