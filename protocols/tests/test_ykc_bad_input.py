"""Bad input is counted and logged; the gateway keeps serving every other pile."""

from __future__ import annotations

import socket
import time

import pytest

from protocols.ykc import encode_frame
from protocols.ykc import messages as m

from .helpers import login, wait_for


def errors(gateway, kind: str) -> float:
    return gateway.sync(lambda: gateway.gateway.metrics.errors.get(kind))


def heartbeat_ok(client, code: str) -> bool:
    client.send(m.Heartbeat(code, 1, False))
    return client.recv(0x04).message.pile_code == code


@pytest.fixture
def bystander(gateway, make_pile, pile_client):
    """Another pile, logged in, that must keep being served."""
    code = make_pile()
    client = pile_client()
    login(client, code)
    return client, code


def test_bad_crc_is_dropped_and_counted(gateway, make_pile, pile_client, bystander):
    code = make_pile()
    client = pile_client()
    login(client, code)
    frame = bytearray(encode_frame(m.Heartbeat(code, 1, False)))
    frame[-1] ^= 0xFF

    client.send_raw(bytes(frame))

    wait_for(lambda: errors(gateway, "bad_crc") == 1)
    assert heartbeat_ok(client, code)
    assert heartbeat_ok(*bystander)


def test_wrong_body_length_is_counted(gateway, make_pile, pile_client, bystander):
    code = make_pile()
    client = pile_client()
    login(client, code)
    body = encode_frame(m.Heartbeat(code, 1, False))[6:-2] + b"\x00"  # 10-byte body
    from protocols.ykc import crc16_modbus

    covered = b"\x00\x00\x00\x03" + body
    crc = crc16_modbus(covered)
    client.send_raw(bytes((0x68, len(covered))) + covered + bytes((crc & 0xFF, crc >> 8)))

    wait_for(lambda: errors(gateway, "bad_length") == 1)
    assert heartbeat_ok(client, code)


def test_split_and_joined_reads_and_garbage_before_a_frame(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)
    one = encode_frame(m.Heartbeat(code, 1, False), 1)
    two = encode_frame(m.Heartbeat(code, 1, False), 2)

    client.send_raw(b"\x01\x02\x03" + one[:5])
    time.sleep(0.05)
    client.send_raw(one[5:] + two)

    assert [client.recv(0x04).sequence for _ in range(2)] == [b"\x01\x00", b"\x02\x00"]
    assert errors(gateway, "garbage") == 1


def test_frames_before_login_are_dropped(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()

    client.send(m.Heartbeat(code, 1, False))

    wait_for(lambda: errors(gateway, "before_login") == 1)
    assert login(client, code).message.success
    assert [f for f in client.frames if f.frame_type == 0x04] == []


def test_frame_for_another_pile_is_dropped(gateway, make_pile, pile_client, bystander):
    code = make_pile()
    client = pile_client()
    login(client, code)
    _, other_code = bystander

    client.send(m.Heartbeat(other_code, 1, False))

    wait_for(lambda: errors(gateway, "pile_mismatch") == 1)
    assert heartbeat_ok(client, code)
    assert [f for f in client.frames if f.frame_type == 0x04] == []


def test_oversize_frame_is_skipped(gateway, make_pile, pile_client, bystander):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send_raw(bytes((0x68, 0xF0)) + bytes(50))  # L = 240 > YKC_MAX_FRAME_SIZE

    wait_for(lambda: errors(gateway, "oversize") == 1)
    assert heartbeat_ok(client, code)


def test_garbage_flood_closes_only_that_connection(gateway, make_pile, pile_client, bystander):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send_raw(bytes(range(0x00, 0x60)) * 40)  # no 0x68 in it

    assert client.closed()
    assert errors(gateway, "garbage_flood") == 1
    assert heartbeat_ok(*bystander)


def test_unknown_and_encrypted_types_are_ignored_not_fatal(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(m.UnknownMessage(0xF1, b"\x01\x02"))
    client.send(m.EncryptedMessage(0x03, bytes(9)))

    assert heartbeat_ok(client, code)
    assert errors(gateway, "unknown_type") == 1
    assert errors(gateway, "encrypted") == 1


def test_silent_connections_are_closed(gateway, make_pile, pile_client, bystander,
                                       monkeypatch):
    code = make_pile(heartbeat_s=1)
    gateway.sync(setattr, gateway.gateway, "login_timeout", 1)
    never_logs_in = pile_client()
    silent = pile_client()
    login(silent, code)

    assert silent.closed(timeout=6)  # 3 × 1 s heartbeat interval, swept every second
    assert never_logs_in.closed(timeout=4)
    assert errors(gateway, "idle_timeout") == 1
    assert errors(gateway, "login_timeout") == 1


def test_half_open_connection_does_not_block_others(gateway, make_pile, pile_client, bystander):
    raw = socket.create_connection(("127.0.0.1", gateway.port))
    raw.sendall(b"\x68\x22\x00")  # a login that never completes

    assert heartbeat_ok(*bystander)
    raw.close()
