"""Fixtures for interconnection: our station (charging's fixtures), fake CEC peers on real
HTTP (an aggregator and a regulator), the partners that point at them, and our platform
itself on a real socket (``live``) for the peers' calls to us."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from charging.tests.conftest import connector, pile, station, tariff  # noqa: F401
from evplatform.tests.helpers import Uvicorn, free_port
from fakes.cec_peer import CecPeer

US = "MA59TEST1"
IN_SECRET = "InSecretAbcdef12"  # the set we issued to the aggregator (its calls to us)
PEER_SECRET = "PeerSecret123456"  # the set the aggregator issued to us (our pushes)


@pytest.fixture
def peer():
    server = CecPeer(("127.0.0.1", free_port()), operator_id="MA1AGGR01", our_id=US,
                     secret=PEER_SECRET).start_background()
    yield server
    server.shutdown()


@pytest.fixture
def regulator_peer():
    server = CecPeer(("127.0.0.1", free_port()), operator_id="MA1REGU01", our_id=US,
                     secret="RegulatorSecret1", prefix="/shevcs/v1/").start_background()
    yield server
    server.shutdown()


def make_partner(*, operator_id="MA1AGGR01", url="", secret=PEER_SECRET, prefix="/evcs/v1/", **extra):
    from protocols.cec.models import Partner

    return Partner.objects.create(
        name="快电 (fake)", operator_id=operator_id, our_operator_id=US,
        in_operator_secret=IN_SECRET, in_data_secret=IN_SECRET, in_data_iv=IN_SECRET,
        in_sig_secret=IN_SECRET, out_operator_secret=secret, out_data_secret=secret,
        out_data_iv=secret, out_sig_secret=secret, base_url=url, path_prefix=prefix, **extra,
    )


@pytest.fixture
def partner(tenant, peer):
    return make_partner(url=peer.url)


@pytest.fixture
def regulator(tenant, regulator_peer):
    return make_partner(operator_id="MA1REGU01", url=regulator_peer.url, secret="RegulatorSecret1",
                        prefix="/shevcs/v1/", is_customer_operator=False, is_regulator=True)


class Caller:
    """The aggregator calling our endpoints on the operator's host, with real crypto."""

    def __init__(self, client, peer, operator_id="MA1AGGR01", secret=IN_SECRET):
        self.client, self.peer, self.operator_id, self.secret = client, peer, operator_id, secret
        self.token = ""

    def keys(self):
        return {"data_secret": self.secret, "data_iv": self.secret, "sig_secret": self.secret}

    def raw(self, interface, body, token=None):
        headers = {}
        token = self.token if token is None else token
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        response = self.client.post(f"/evcs/v1/{interface}", data=body,
                                    content_type="application/json", **headers)
        assert response.status_code == 200, response.content
        return response.json()

    def call(self, interface, data, token=None, **envelope):
        body = self.peer.request(data, operator_id=self.operator_id, **self.keys())
        body.update(envelope)
        answer = self.raw(interface, body, token)
        if answer["Ret"] in (4003,) or not answer["Sig"]:
            return answer["Ret"], answer["Msg"], None
        return self.peer.open(answer, **self.keys())

    def login(self):
        ret, _msg, data = self.call("query_token", {"OperatorID": self.operator_id,
                                                    "OperatorSecret": self.secret})
        assert ret == 0 and data["SuccStat"] == 0, data
        self.token = data["AccessToken"]
        return data


@pytest.fixture
def caller(tenant, partner, peer):
    from django.test import Client

    return Caller(Client(HTTP_HOST=f"{tenant.slug}.testserver"), peer)


class Live:
    """Our platform's ASGI app (``evplatform.asgi``) under uvicorn on a loopback port of
    ``EVP_TEST_PORT_RANGE``, reached as the operator's host (``Host: tenant-a.testserver``)."""

    def __init__(self, web, host):
        self.web, self.host = web, host
        self.base = f"http://127.0.0.1:{web.port}"

    def post(self, path, body, headers=None):
        """POST ``body`` (text) to ``path`` over a real socket; (HTTP status, JSON answer)."""
        request = urllib.request.Request(
            self.base + path, data=body.encode(), method="POST",
            headers={"Content-Type": "application/json;charset=utf-8", **(headers or {}), "Host": self.host})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def live(tenant, monkeypatch):
    """The platform on a real socket for the duration of a test. Whatever thread the server
    runs Django's sync code in (asgiref's thread-sensitive thread, or a pool of WSGI threads
    with ``ASGI_HTTP=wsgi``), it uses the test's own database connection (as Django's live
    server does for shared connections), so it sees the test's uncommitted rows and its
    writes roll back with the test. The connection is handed out by the connection handler
    itself while the fixture lasts, not stored in the threads' own storage, so no server
    thread keeps it after the test (the WSGI pool's threads outlive the test). The request
    signals' ``close_old_connections`` must not close it mid-transaction (Django's test client
    holds it off for its own requests only), so for the test it leaves it open."""
    from django.db import DEFAULT_DB_ALIAS, connections

    shared = connections[DEFAULT_DB_ALIAS]
    handler_type = type(connections)
    own = handler_type.__getitem__

    def getitem(self, alias):
        return shared if self is connections and alias == DEFAULT_DB_ALIAS else own(self, alias)

    monkeypatch.setattr(shared, "close_if_unusable_or_obsolete", lambda: None)
    monkeypatch.setattr(handler_type, "__getitem__", getitem)
    shared.inc_thread_sharing()
    web = Uvicorn()
    try:
        yield Live(web, f"{tenant.slug}.testserver")
    finally:
        web.stop()
        shared.dec_thread_sharing()


class LiveCaller(Caller):
    """The aggregator calling our endpoints over a real socket (the ``live`` server)."""

    def __init__(self, live, peer, **kwargs):
        super().__init__(None, peer, **kwargs)
        self.live = live

    def raw(self, interface, body, token=None):
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, answer = self.live.post(f"/evcs/v1/{interface}", json.dumps(body, ensure_ascii=False), headers)
        assert status == 200, answer
        return answer


@pytest.fixture
def live_caller(live, partner, peer):
    return LiveCaller(live, peer)
