"""Fixtures for interconnection: our station (charging's fixtures), fake CEC peers on real
HTTP (an aggregator and a regulator), and the partners that point at them."""

from __future__ import annotations

import pytest

from charging.tests.conftest import connector, pile, station, tariff  # noqa: F401
from evplatform.tests.helpers import free_port
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
