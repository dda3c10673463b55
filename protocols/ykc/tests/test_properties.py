"""Property tests: encode → decode → the same message, for every message type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ykc import MESSAGE_TYPES, FrameSplitter, decode_frame, encode_frame

from .strategies import any_message, messages_of, sequences


@pytest.mark.parametrize("frame_type", sorted(MESSAGE_TYPES), ids=lambda c: f"0x{c:02X}")
@settings(max_examples=60, deadline=None)
@given(data=st.data(), sequence=sequences())
def test_roundtrip_every_message_type(frame_type, data, sequence):
    message = data.draw(messages_of(frame_type))
    wire = encode_frame(message, sequence=sequence)
    assert wire[0] == 0x68
    assert len(wire) == wire[1] + 4
    assert wire[5] == frame_type
    got = decode_frame(wire)
    assert got.message == message
    assert got.sequence == sequence
    assert got.crc_swapped is False
    assert type(got.message) is type(message)
    assert encode_frame(got.message, sequence=got.sequence) == wire


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(any_message(), sequences()), min_size=1, max_size=8),
       st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_splitter_recovers_any_stream_of_valid_frames(items, cuts):
    wire = b"".join(encode_frame(message, sequence=seq) for message, seq in items)
    splitter = FrameSplitter()
    got, pos, index = [], 0, 0
    while pos < len(wire):
        step = cuts[index % len(cuts)]
        frames, errors = splitter.feed(wire[pos:pos + step])
        assert errors == []
        got += frames
        pos += step
        index += 1
    assert [(f.message, f.sequence) for f in got] == items
    assert splitter.pending == 0
