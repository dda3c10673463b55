"""Metrics endpoint, frame log written in batches, pruning."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

from django_tenants.utils import schema_context

from protocols.models import FrameLog
from protocols.ykc import encode_frame, store
from protocols.ykc import messages as m

from .conftest import SCHEMA, committed
from .helpers import login, wait_for


def scrape(gateway) -> str:
    url = f"http://127.0.0.1:{gateway.gateway.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


def test_metrics_endpoint_in_prometheus_text_format(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)
    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)
    client.send_raw(b"\x00\x01")

    text = wait_for(lambda: (t := scrape(gateway)) and 'ykc_errors_total{kind="garbage"} 1' in t
                    and t)

    lines = text.splitlines()
    assert "# TYPE ykc_piles_connected gauge" in lines
    assert "ykc_piles_connected 1" in lines
    assert "ykc_connections 1" in lines
    assert 'ykc_frames_in_total{type="0x01"} 1' in lines
    assert 'ykc_frames_in_total{type="0x03"} 1' in lines
    assert 'ykc_frames_out_total{type="0x04"} 1' in lines
    assert "# TYPE ykc_reply_latency_seconds histogram" in lines
    assert 'ykc_reply_latency_seconds_count{type="0x04"} 1' in lines
    assert 'ykc_reply_latency_seconds_bucket{type="0x04",le="+Inf"} 1' in lines


def test_metrics_endpoint_answers_404_elsewhere(gateway):
    url = f"http://127.0.0.1:{gateway.gateway.metrics_port}/nope"
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("expected 404")


def test_every_frame_in_and_out_is_logged(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)
    sent = client.send(m.Heartbeat(code, 1, False), sequence=b"\x00\x09")
    client.recv(0x04)

    gateway.flush()

    with schema_context(SCHEMA):
        rows = list(FrameLog.objects.filter(pile_code=code).order_by("id"))
    assert [(r.direction, r.frame_code, r.name) for r in rows] == [
        ("in", "0x01", "Login"), ("out", "0x02", "LoginReply"), ("out", "0x56", "TimeSync"),
        ("in", "0x03", "Heartbeat"), ("out", "0x04", "HeartbeatReply")]
    assert rows[3].hex == sent.hex().upper()


def test_heartbeats_can_be_left_out_of_the_log(gateway, make_pile, pile_client):
    gateway.sync(setattr, gateway.gateway, "heartbeat_log_seconds", -1)
    code = make_pile()
    client = pile_client()
    login(client, code)
    client.send(m.Heartbeat(code, 1, False))
    client.recv(0x04)

    gateway.flush()

    with schema_context(SCHEMA):
        assert not FrameLog.objects.filter(pile_code=code, frame_type__in=(3, 4)).exists()
        assert FrameLog.objects.filter(pile_code=code).count() == 3


def swapped_crc(frame: bytes) -> bytes:
    """The frame with its CRC high byte first (decoded and answered by the general path,
    never by the bulk heartbeat loop)."""
    return frame[:-2] + frame[-1:] + frame[-2:-1]


def heartbeat_rows(code: str) -> list[tuple[str, str]]:
    with schema_context(SCHEMA):
        return list(FrameLog.objects.filter(pile_code=code, frame_type__in=(3, 4))
                    .order_by("id").values_list("direction", "hex"))


def test_a_links_heartbeats_are_logged_once_a_minute(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)
    beats = [encode_frame(m.Heartbeat(code, 1, False), n) for n in range(1, 4)]

    client.send_raw(beats[0] + beats[1])  # answered in bulk
    client.send_raw(swapped_crc(beats[2]))  # answered by the general path
    replies = [client.recv(0x04) for _ in range(3)]

    gateway.flush()
    assert heartbeat_rows(code) == [("in", beats[0].hex().upper()),
                                    ("out", replies[0].raw.hex().upper())]
    # Both ways the heartbeats counted in, out and in the latency histogram.
    text = scrape(gateway).splitlines()
    assert 'ykc_frames_in_total{type="0x03"} 3' in text
    assert 'ykc_frames_out_total{type="0x04"} 3' in text
    assert 'ykc_reply_latency_seconds_count{type="0x04"} 3' in text


def test_every_heartbeat_can_be_logged(gateway, make_pile, pile_client):
    gateway.sync(setattr, gateway.gateway, "heartbeat_log_seconds", 0)
    code = make_pile()
    client = pile_client()
    login(client, code)
    beats = [encode_frame(m.Heartbeat(code, 1, False), n) for n in range(1, 5)]

    client.send_raw(beats[0] + beats[1] + beats[2])
    client.send_raw(swapped_crc(beats[3]))
    replies = [client.recv(0x04) for _ in range(4)]

    gateway.flush()
    rows = heartbeat_rows(code)
    assert [direction for direction, _ in rows] == ["in", "out"] * 4
    assert [hex_ for _, hex_ in rows[::2]] == [b.hex().upper() for b in beats[:3]] + [
        swapped_crc(beats[3]).hex().upper()]
    assert [hex_ for _, hex_ in rows[1::2]] == [r.raw.hex().upper() for r in replies]


def test_prune_deletes_old_rows_only(make_pile, settings):
    code = make_pile()
    now = datetime.now(UTC)
    settings.YKC_FRAME_LOG_DAYS = 7

    def given_and_prune():
        with schema_context(SCHEMA):
            for age in (8, 6):
                FrameLog.objects.create(pile_code=code, at=now - timedelta(days=age),
                                        direction="in", frame_type=3, name="Heartbeat", hex="68")
            counts = store.prune(now=now)
            return counts, list(FrameLog.objects.filter(pile_code=code)
                                .values_list("at", flat=True))

    counts, left = committed(given_and_prune)

    assert counts["frames"] == 1
    assert left == [now - timedelta(days=6)]
