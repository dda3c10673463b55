"""Fuzz: arbitrary and mutated bytes only ever give frames or FrameError subclasses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.ykc import (
    MAX_FRAME_SIZE,
    MESSAGE_TYPES,
    Frame,
    FrameError,
    FrameSplitter,
    crc16_modbus,
    decode_frame,
    encode_frame,
    split_frames,
)

from . import vectors as v
from .strategies import any_message

SEEDS = [bytes.fromhex(x) for x in (v.J1, v.J5, v.J6, v.J7, v.J9, v.P3, v.P4, v.D1)]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode(data: bytes) -> Frame | FrameError:
    try:
        return decode_frame(data)
    except FrameError as exc:  # any other exception fails the test
        return exc


def _reframe(covered: bytes) -> bytes:
    """Give mutated sequence…body bytes a correct envelope so the body decoders see them."""
    covered = covered[:255]
    return bytes((0x68, len(covered))) + covered + crc16_modbus(covered).to_bytes(2, "little")


@st.composite
def mutated(draw) -> bytes:
    base = bytearray(draw(st.sampled_from(SEEDS) | any_message().map(encode_frame)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(base) - 1, 0)))
        if action == "flip" and base:
            base[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and base:
            base[at] = draw(st.integers(0, 255))
        elif action == "insert":
            base[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and base:
            del base[at:at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del base[at:]
    return bytes(base)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data):
    assert isinstance(_decode(data), Frame | FrameError)
    if data:
        assert isinstance(_decode(b"\x68" + data), Frame | FrameError)


@FUZZ
@given(mutated())
def test_mutated_frames(data):
    assert isinstance(_decode(data), Frame | FrameError)


@FUZZ
@given(mutated())
def test_mutated_frames_with_repaired_crc_reach_the_body_decoders(data):
    if len(data) >= 6:
        result = _decode(_reframe(data[2:-2]))
        assert isinstance(result, Frame | FrameError)


@pytest.mark.parametrize("frame_type", sorted(MESSAGE_TYPES), ids=lambda c: f"0x{c:02X}")
@settings(max_examples=80, deadline=None)
@given(body=st.binary(max_size=251))
def test_random_bodies_for_every_type(frame_type, body):
    size = MESSAGE_TYPES[frame_type].BODY_SIZE
    if size is not None and body:
        body = (body * (size // len(body) + 1))[:size]  # mostly the right length
    result = _decode(_reframe(b"\x00\x00\x00" + bytes((frame_type,)) + body))
    assert isinstance(result, Frame | FrameError)
    if isinstance(result, Frame):
        assert result.message.FRAME_TYPE == frame_type


@FUZZ
@given(st.lists(mutated() | st.binary(max_size=40), max_size=8),
       st.lists(st.integers(1, 200), min_size=1, max_size=10))
def test_splitter_on_garbage_and_mutations(parts, cuts):
    stream = b"".join(parts)
    whole_frames, remaining, errors = split_frames(stream)
    assert all(isinstance(f, Frame) for f in whole_frames)
    assert all(isinstance(e, FrameError) for e in errors)
    assert len(remaining) < MAX_FRAME_SIZE
    assert not remaining or remaining[0] == 0x68
    # Feeding the same bytes in pieces finds the same frames.
    splitter = FrameSplitter()
    pieces, pos, index = [], 0, 0
    while pos < len(stream):
        step = cuts[index % len(cuts)]
        frames, piece_errors = splitter.feed(stream[pos:pos + step])
        assert all(isinstance(e, FrameError) for e in piece_errors)
        pieces += frames
        pos += step
        index += 1
    assert pieces == whole_frames
    assert splitter.pending == len(remaining)


@FUZZ
@given(st.binary(min_size=1, max_size=2000))
def test_splitter_with_small_max_frame_size(stream):
    frames, remaining, errors = split_frames(stream, max_frame_size=64)
    assert len(remaining) < 64
    assert all(isinstance(e, FrameError) for e in errors)
