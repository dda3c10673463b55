"""Fuzz the live OCPP gateway over real WebSockets: random text and bytes, real OCPP-J
calls, and real calls mutated (message-type id, unique id, action, payload fields of
the wrong type, deep nesting, huge numbers, cut JSON) from a booted pile. The gateway must
answer every call (a CALLRESULT or an OCPP-J CALLERROR with an OCPP 1.6 error code), never
answer a reply, keep the fuzzed connection usable and keep serving another pile."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .ocpp_helpers import OcppGatewayThread, RawClient

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# OCPP-J 1.6 §4.2.3: the error codes a CALLERROR may carry.
ERROR_CODES = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError",
               "SecurityError", "FormationViolation", "PropertyConstraintViolation",
               "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError"}

# Real calls a pile sends; none of them writes a transaction record the test must remove.
REAL_CALLS = [
    ("Heartbeat", {}),
    ("BootNotification", {"chargePointVendor": "Fuzz", "chargePointModel": "F1"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    ("StatusNotification", {"connectorId": 0, "errorCode": "OtherError", "status": "Faulted",
                            "info": "x", "vendorErrorCode": "E1"}),
    ("Authorize", {"idTag": "FUZZ-TAG"}),
    ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2026-11-20T08:00:00Z",
                                                       "sampledValue": [{"value": "12.5"}]}]}),
    ("DataTransfer", {"vendorId": "fuzz", "messageId": "m", "data": "d"}),
    ("FirmwareStatusNotification", {"status": "Downloading"}),
    ("DiagnosticsStatusNotification", {"status": "Idle"}),
]

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                       st.floats(allow_nan=False, allow_infinity=False), _text)
_json = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)), max_leaves=12)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def _mutated_call(draw) -> str:
    action, payload = draw(st.sampled_from(REAL_CALLS))
    message = [2, draw(st.text(min_size=1, max_size=36, alphabet="abcdef0123456789-")),
               action, dict(payload)]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["type_id", "unique_id", "action", "field", "drop",
                                     "extra", "length"]))
        if kind == "type_id":
            message[0] = draw(st.one_of(st.integers(-5, 10), st.just("2"), st.none()))
        elif kind == "unique_id":
            message[1] = draw(st.one_of(_json_leaf, st.text(min_size=37, max_size=80)))
        elif kind == "action":
            message[2] = draw(st.one_of(_json_leaf, st.sampled_from(
                ["StartTransaction!", "", "heartbeat", "RemoteStartTransaction"])))
        elif kind == "field" and isinstance(message[3], dict) and message[3]:
            key = draw(st.sampled_from(sorted(message[3])))
            message[3][key] = draw(_json)
        elif kind == "drop" and isinstance(message[3], dict) and message[3]:
            message[3].pop(draw(st.sampled_from(sorted(message[3]))))
        elif kind == "extra":
            if isinstance(message[3], dict):
                message[3][draw(_text)] = draw(_json)
            else:
                message[3] = draw(_json)
        elif kind == "length" and len(message) > 1:
            message = message[:draw(st.integers(0, len(message) - 1))] if draw(
                st.booleans()) else [*message, draw(_json)]
    text = json.dumps(message, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:  # cut anywhere
        text = text[:draw(st.integers(0, len(text)))]
    return text


def fuzz_frames():
    text_frames = st.one_of(
        _mutated_call(),
        _text,
        _json.map(json.dumps),
        st.integers(1, 5000).map(_deep),
        st.integers(1, 3000).map(lambda d: '[2, "deep", "DataTransfer", {"vendorId": "x", '
                                 f'"data": {_deep(d)}}}]'),
        st.integers(4300, 20000).map(lambda n: f'[2, "big", "Heartbeat", {{"n": {"9" * n}}}]'),
        st.just('[2, "nan", "MeterValues", {"connectorId": NaN, "meterValue": []}]'),
    )
    frame = st.one_of(text_frames, st.binary(max_size=64))
    return st.lists(frame, min_size=1, max_size=6)


def _expects_reply(frame: str | bytes) -> bool | None:
    """True when OCPP-J requires an answer (anything but a reply), False when it forbids
    one (a CALLRESULT or CALLERROR), None when either is allowed."""
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return True
    if isinstance(data, list) and data and data[0] in (3, 4) and type(data[0]) is int:
        return False
    return True


@pytest.fixture
def ocpp(unblocked, make_pile):
    # After make_pile: the gateway stops (its offline marks written) before the piles go.
    gw = OcppGatewayThread()
    yield gw
    gw.stop()


def test_fuzzed_frames_are_answered_and_never_break_the_gateway(ocpp, make_pile):
    code, other = make_pile(protocol="ocpp", connectors=2), make_pile(protocol="ocpp")
    bystander = RawClient(ocpp.url, other)
    assert bystander.boot()[0] == 3
    fuzzed = RawClient(ocpp.url, code)
    assert fuzzed.boot()[0] == 3
    probes = iter(range(10**6))

    @FUZZ
    @given(fuzz_frames())
    def run(frames):
        for frame in frames:
            fuzzed.send(frame) if isinstance(frame, str) else fuzzed.ws.send(frame)
            probe = f"probe-{next(probes)}"
            fuzzed.send(json.dumps([2, probe, "Heartbeat", {}]))
            replies = []
            while True:  # messages are handled in order: the probe's answer comes last
                reply = fuzzed.recv(timeout=15)
                if reply[:2] == [3, probe]:
                    break
                replies.append(reply)
            expected = _expects_reply(frame)
            assert len(replies) == (1 if expected else 0) or expected is None, (frame, replies)
            for reply in replies:
                assert isinstance(reply, list) and reply[0] in (3, 4), (frame, reply)
                if reply[0] == 4:
                    assert len(reply) == 5 and isinstance(reply[1], str), (frame, reply)
                    assert reply[2] in ERROR_CODES, (frame, reply)
                    assert isinstance(reply[3], str) and isinstance(reply[4], dict)
            assert bystander.call(f"b-{probe}", "Heartbeat", {})[0] == 3

    run()
    errors = ocpp.gateway.metrics.errors
    assert errors.get("session_failed") == 0
    assert ocpp.call(_sessions(ocpp)) == sorted([code, other])
    fuzzed.close()
    bystander.close()


def _sessions(ocpp):
    async def read():
        return sorted(ocpp.gateway.sessions)
    return read()
