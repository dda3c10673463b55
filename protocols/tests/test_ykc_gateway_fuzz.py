"""Fuzz the live YKC gateway over real sockets: random bytes, real frames and mutated real
frames (some with a repaired CRC, so the body decoders and the handlers see them), cut at
random points, from a logged-in pile and from an attacker on another address who also
tries the legitimate pile's code. The gateway must keep serving the legitimate pile, no
handler may fail, the attacker never gets a session, and once the fuzzing connections
close nothing of theirs is left (connections, sessions, awaited replies)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.ykc import MESSAGE_TYPES, crc16_modbus, encode_frame
from protocols.ykc import messages as m
from protocols.ykc.tests.strategies import messages_of

from .helpers import login, wait_for
from .test_ykc_takeover import PileFrom

# Upstream types whose handling writes nothing the test cannot remove (no transaction
# records or card starts), plus downstream types a pile must never send.
FUZZ_TYPES = sorted(t for t in MESSAGE_TYPES if t not in (0x31, 0x3B, 0xA1))
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def _message_for(draw, code: str):
    message = draw(st.sampled_from(FUZZ_TYPES).flatmap(messages_of))
    names = {f.name for f in dataclasses.fields(message)}
    return dataclasses.replace(message, pile_code=code) if "pile_code" in names else message


def _mutate(draw, data: bytes) -> bytes:
    base = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(base) - 1, 0)))
        if action == "flip" and base:
            base[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and base:
            base[at] = draw(st.integers(0, 255))
        elif action == "insert":
            base[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif action == "delete" and base:
            del base[at:at + draw(st.integers(1, 6))]
        elif action == "truncate":
            del base[at:]
    return bytes(base)


def _repair(data: bytes) -> bytes:
    """A correct envelope around mutated sequence…body bytes."""
    covered = data[2:-2][:200] if len(data) >= 6 else data
    return bytes((0x68, len(covered))) + covered + crc16_modbus(covered).to_bytes(2, "little")


@st.composite
def fuzz_stream(draw, codes: list[str]) -> list[bytes]:
    """Chunks to send: frames for one of ``codes`` as they are, mutated, or mutated with a
    repaired CRC, and random bytes; joined and cut at random points."""
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["frame", "mutated", "repaired", "random"]))
        if kind == "random":
            parts.append(draw(st.binary(min_size=1, max_size=64)))
            continue
        frame = encode_frame(_message_for(draw, draw(st.sampled_from(codes))),
                             draw(st.integers(0, 0xFFFF)))
        if kind == "mutated":
            frame = _mutate(draw, frame)
        elif kind == "repaired":
            frame = _repair(_mutate(draw, frame))
        parts.append(frame)
    stream = b"".join(parts)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(stream) - 1, 1)), max_size=4))))
    chunks, start = [], 0
    for cut in [*cuts, len(stream)]:
        if cut > start:
            chunks.append(stream[start:cut])
            start = cut
    return chunks


def _send(client, chunks: list[bytes]) -> None:
    for chunk in chunks:
        try:
            client.send_raw(chunk)
        except OSError:  # the gateway may hang up on a flood of garbage: that is allowed
            return


def _served(client, code: str) -> bool:
    client.send(m.Heartbeat(code, 1, False))
    return client.recv(0x04, timeout=15).message == m.HeartbeatReply(code, 1, 0)


def _errors(gateway, kind: str) -> float:
    return gateway.sync(lambda: gateway.gateway.metrics.errors.get(kind))


@pytest.fixture
def arena(gateway, make_pile, pile_client):
    """A legitimate pile logged in from 127.0.0.1, and a second pile code for the fuzzer."""
    code = make_pile(connectors=2)
    client = pile_client()
    login(client, code, connectors=2)
    return {"pile": client, "code": code, "fuzz_code": make_pile(connectors=2)}


def _no_leftovers(gateway, arena, fuzz_clients) -> None:
    for client in fuzz_clients:
        client.close()
    gw = gateway.gateway
    wait_for(lambda: gateway.sync(lambda: len(gw.connections)) == 1, timeout=20)
    assert gateway.sync(lambda: sorted(gw.sessions)) == [arena["code"]]
    assert gateway.sync(lambda: gw.sessions[arena["code"]].host) == "127.0.0.1"
    assert gateway.sync(lambda: sum(len(c.pending) for c in gw.connections)) == 0
    assert _errors(gateway, "handler_failed") == 0
    assert _served(arena["pile"], arena["code"])


def test_fuzzed_frames_from_a_logged_in_pile(gateway, arena):
    opened = []

    @FUZZ
    @given(fuzz_stream([arena["fuzz_code"], arena["code"]]))
    def run(chunks):
        client = PileFrom(gateway.port, "127.0.0.4")
        opened.append(client)
        assert login(client, arena["fuzz_code"], connectors=2).message.success
        _send(client, chunks)
        assert _served(arena["pile"], arena["code"])
        assert _errors(gateway, "handler_failed") == 0
        client.close()

    run()
    # The malformed input was seen, counted (and logged) and skipped, not silently lost.
    assert sum(_errors(gateway, kind) for kind in ("bad_crc", "bad_length", "bad_field",
                                                   "garbage", "pile_mismatch")) > 0
    _no_leftovers(gateway, arena, opened)


def test_fuzzed_frames_from_an_attacker_who_tries_the_piles_code(gateway, arena):
    opened = []

    @FUZZ
    @given(fuzz_stream([arena["code"]]), st.booleans())
    def run(chunks, log_in_first):
        attacker = PileFrom(gateway.port, "127.0.0.2")
        opened.append(attacker)
        if log_in_first:  # a well-formed takeover attempt, then the fuzz
            assert login(attacker, arena["code"], connectors=2).message.success is False
        _send(attacker, chunks)
        assert _served(arena["pile"], arena["code"])
        assert gateway.sync(lambda: gateway.gateway.sessions[arena["code"]].host) == "127.0.0.1"
        attacker.close()

    run()
    assert _errors(gateway, "login_takeover") > 0  # the code was tried, and refused
    _no_leftovers(gateway, arena, opened)
