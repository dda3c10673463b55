"""Stream splitting: split/joined reads, garbage, resync, maximum frame size (§1.1)."""

from __future__ import annotations

import pytest

from protocols.ykc import (
    BadCRC,
    BadLength,
    BadStartByte,
    FrameSplitter,
    decode_frame,
    split_frames,
)

from . import vectors as v
from .vectors import frame

STREAM_FRAMES = [frame(x) for x in (v.J1, v.J4, v.J5, v.J7, v.J8, v.P4)]
STREAM = b"".join(STREAM_FRAMES)


def _messages(frames):
    return [f.message for f in frames]


def test_joined_frames_in_one_read():
    frames, remaining, errors = split_frames(STREAM)
    assert _messages(frames) == [decode_frame(x).message for x in STREAM_FRAMES]
    assert remaining == b""
    assert errors == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1460])
def test_frames_split_across_reads(chunk):
    splitter = FrameSplitter()
    got = []
    for start in range(0, len(STREAM), chunk):
        frames, errors = splitter.feed(STREAM[start:start + chunk])
        assert errors == []
        got += frames
    assert _messages(got) == [decode_frame(x).message for x in STREAM_FRAMES]
    assert splitter.pending == 0


def test_partial_frame_is_kept():
    data = frame(v.J5)
    frames, remaining, errors = split_frames(frame(v.J2) + data[:30])
    assert len(frames) == 1 and errors == []
    assert remaining == data[:30]


def test_garbage_is_skipped_and_reported_once_per_run():
    frames, remaining, errors = split_frames(b"\x00\x01\x02" + frame(v.J2) + b"\xff\xfe"
                                             + frame(v.J3))
    assert len(frames) == 2
    assert remaining == b""
    assert [type(e) for e in errors] == [BadStartByte, BadStartByte]
    assert errors[0].data == b"\x00\x01\x02"
    assert errors[1].data == b"\xff\xfe"


def test_resync_after_false_start_byte():
    # A stray 0x68 whose "frame" fails the CRC: skip it and find the real frame.
    junk = b"\x68\x0c" + bytes(14)
    frames, remaining, errors = split_frames(junk + frame(v.J2))
    assert _messages(frames) == [decode_frame(frame(v.J2)).message]
    assert isinstance(errors[0], BadCRC)
    assert remaining == b""


def test_bad_crc_frame_is_dropped_and_next_one_decoded():
    broken = bytearray(frame(v.J5))
    broken[-1] ^= 0x55
    frames, remaining, errors = split_frames(bytes(broken) + frame(v.J2))
    assert _messages(frames) == [decode_frame(frame(v.J2)).message]
    assert isinstance(errors[0], BadCRC)


def test_valid_crc_but_bad_body_consumes_whole_frame():
    from protocols.ykc import crc16_modbus

    covered = bytes.fromhex("00070003320102000000010100FF")
    bad = b"\x68" + bytes((len(covered),)) + covered + crc16_modbus(covered).to_bytes(2, "little")
    frames, remaining, errors = split_frames(bad + frame(v.J2))
    assert len(frames) == 1
    assert [type(e) for e in errors] == [BadLength]
    assert errors[0].frame_type == 0x03


def test_maximum_frame_size_is_enforced():
    frames, remaining, errors = split_frames(frame(v.J7) + frame(v.J2), max_frame_size=100)
    # 0x3B (166 bytes) is refused; its bytes are skipped as garbage until the next frame.
    assert _messages(frames) == [decode_frame(frame(v.J2)).message]
    assert isinstance(errors[0], BadLength)
    assert remaining == b""


def test_length_below_four_resyncs():
    frames, remaining, errors = split_frames(b"\x68\x02" + frame(v.J2))
    assert len(frames) == 1
    assert isinstance(errors[0], BadLength)


def test_splitter_never_buffers_more_than_one_frame():
    splitter = FrameSplitter()
    for _ in range(50):
        splitter.feed(b"\x68\xff" + bytes(100))
        assert splitter.pending < 259


def test_lonely_start_byte_waits_for_length():
    frames, remaining, errors = split_frames(frame(v.J2) + b"\x68")
    assert len(frames) == 1 and errors == [] and remaining == b"\x68"


def test_splitter_clear_and_bounds():
    splitter = FrameSplitter()
    splitter.feed(frame(v.J5)[:10])
    assert splitter.pending == 10
    splitter.clear()
    assert splitter.pending == 0
    with pytest.raises(ValueError):
        FrameSplitter(max_frame_size=4)
