"""Heartbeats answered in bulk (protocols.ykc.heartbeats): the compiled loop and its Python
twin, against each other and against the general splitter and encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ykc import encode_frame
from protocols.ykc import heartbeats as hb
from protocols.ykc import messages as m
from protocols.ykc.splitter import split_frames

CODE = "32010200000001"
PILE = bytes.fromhex(CODE)
IMPLEMENTATIONS = [hb.heartbeat_replies, hb.python_heartbeat_replies]


def beat(sequence: int, connector: int = 1, fault: bool = False, code: str = CODE) -> bytes:
    return encode_frame(m.Heartbeat(code, connector, fault), sequence)


def reply(sequence: int, connector: int = 1) -> bytes:
    return encode_frame(m.HeartbeatReply(CODE, connector, 0), sequence)


def test_the_compiled_loop_is_built():
    # make venv builds it (cythonize); without it the gateway runs the Python loop, ~10×
    # slower, so a broken build must not pass unnoticed.
    assert hb.COMPILED
    assert hb.heartbeat_replies is not hb.python_heartbeat_replies


@pytest.mark.parametrize("answer", IMPLEMENTATIONS)
def test_a_run_of_heartbeats_is_answered_in_order(answer):
    data = beat(1, 1) + beat(2, 2, fault=True) + beat(0xFFFF, 12)

    count, replies = answer(data, PILE)

    assert count == 3
    assert replies == reply(1, 1) + reply(2, 2) + reply(0xFFFF, 12)
    assert len(replies) == hb.SIZE * 3
    assert split_frames(replies)[0][2].sequence == b"\xff\xff"  # echoed as received


@pytest.mark.parametrize("answer", IMPLEMENTATIONS)
@pytest.mark.parametrize("follower", [
    beat(3, code="32010200000002"),  # another pile: the general path drops it, counted
    encode_frame(m.BillingModelVerify(CODE, "0001"), 3),  # another type
    beat(3)[:-2] + bytes((beat(3)[-2] ^ 1, beat(3)[-1])),  # a bad CRC
    beat(3)[:-2] + beat(3)[-1:] + beat(3)[-2:-1],  # its CRC sent high byte first
    beat(3)[:4] + b"\x01" + beat(3)[5:],  # encrypted
    beat(3)[:13] + b"\x0a" + beat(3)[14:],  # a connector number that is not BCD
    beat(3)[:-1],  # a partial frame, the rest in the next read
    b"\x00\x68",  # garbage
], ids=["other-pile", "other-type", "bad-crc", "swapped-crc", "encrypted", "bin-gun",
        "partial", "garbage"])
def test_the_run_stops_at_anything_else(answer, follower):
    data = beat(1) + beat(2) + follower + beat(4)

    assert answer(data, PILE) == (2, reply(1) + reply(2))
    assert answer(follower + beat(4), PILE) == (0, b"")


@pytest.mark.parametrize("answer", IMPLEMENTATIONS)
def test_input_of_other_kinds(answer):
    data = beat(1) + beat(2)

    assert answer(b"", PILE) == (0, b"")
    assert answer(bytearray(data), PILE) == (2, reply(1) + reply(2))
    assert answer(memoryview(data), PILE) == (2, reply(1) + reply(2))
    with pytest.raises(ValueError):
        answer(data, PILE[:6])


PIECES = st.one_of(
    st.builds(beat, st.integers(0, 0xFFFF), st.integers(0, 99), st.booleans()),
    st.builds(beat, st.integers(0, 0xFFFF), st.integers(0, 99), st.booleans(),
              st.just("32010200000002")),
    st.builds(lambda s: encode_frame(m.BillingModelVerify(CODE, "0001"), s), st.integers(0, 0xFFFF)),
    st.binary(max_size=20),
    st.builds(lambda frame, at, value: frame[:at] + bytes((value,)) + frame[at + 1:],
              st.builds(beat, st.integers(0, 0xFFFF)), st.integers(0, 16), st.integers(0, 255)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=12))
def test_both_loops_agree_with_the_general_path(pieces):
    data = b"".join(pieces)

    count, replies = hb.heartbeat_replies(data, PILE)

    assert (count, replies) == hb.python_heartbeat_replies(data, PILE)
    # What was taken is what the splitter decodes as this pile's heartbeats, answered as
    # the general path answers them (its 0x04 encoded from the message).
    frames, _, errors = split_frames(data[:count * hb.SIZE])
    assert not errors and len(frames) == count
    expected = b""
    for frame in frames:
        assert isinstance(frame.message, m.Heartbeat) and not frame.crc_swapped
        assert frame.message.pile_code == CODE and not frame.encrypted
        expected += encode_frame(m.HeartbeatReply(CODE, frame.message.connector_no, 0),
                                 bytes(frame.sequence))
    assert replies == expected
