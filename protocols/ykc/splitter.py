"""Cut a TCP byte stream into YKC frames (reference §1.1: find 0x68, read L, take L + 4).

Handles frames split across reads and several frames per read (粘包), skips garbage up to
the next 0x68, and never buffers more than one maximum-size frame of undecided bytes.
"""

from __future__ import annotations

from .errors import BadCRC, BadLength, BadStartByte, FrameError
from .frame import MAX_FRAME_SIZE, START, Frame, _decode_checked


def split_frames(
    buffer: bytes | bytearray | memoryview, *, max_frame_size: int = MAX_FRAME_SIZE
) -> tuple[list[Frame], bytes, list[FrameError]]:
    """Decode every complete frame at the start of ``buffer``.

    Returns ``(frames, remaining, errors)``: decoded frames in stream order, the unconsumed
    tail (a partial frame, to be prefixed to the next read) and the errors met. Garbage before
    a 0x68 is reported once per run as :class:`BadStartByte`; a length beyond
    ``max_frame_size`` (:class:`BadLength`) or a :class:`BadCRC` makes the splitter skip that
    0x68 and resync on the next one; a frame with a good CRC whose body is invalid is consumed
    whole and its error reported. Never raises a FrameError itself.
    """
    data = bytes(buffer)
    frames: list[Frame] = []
    errors: list[FrameError] = []
    pos = 0
    size = len(data)
    while pos < size:
        if data[pos] != START:
            nxt = data.find(START, pos)
            stop = size if nxt < 0 else nxt
            errors.append(BadStartByte(f"skipped {stop - pos} bytes before a 0x68",
                                       data[pos:stop]))
            pos = stop
            continue
        if pos + 2 > size:
            break
        length = data[pos + 1]
        total = length + 4
        if length < 4 or total > max_frame_size:
            errors.append(BadLength(f"length byte {length} gives a frame of {total} bytes "
                                    f"(allowed 8..{max_frame_size})", data[pos:pos + 2]))
            pos += 1
            continue
        if pos + total > size:
            break
        chunk = data[pos:pos + total]
        try:
            frames.append(_decode_checked(chunk, length))
        except BadCRC as exc:
            # A stray 0x68 inside garbage looks like a start; try the next one.
            errors.append(exc)
            pos += 1
            continue
        except FrameError as exc:
            errors.append(exc)
        pos += total
    return frames, data[pos:], errors


class FrameSplitter:
    """Stateful wrapper of :func:`split_frames` for one connection.

    ``feed(data)`` appends a read and returns ``(frames, errors)``; ``pending`` is the number
    of buffered bytes (always < ``max_frame_size``).
    """

    __slots__ = ("_buffer", "max_frame_size")

    def __init__(self, *, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if not 8 <= max_frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be within 8..{MAX_FRAME_SIZE}")
        self._buffer = b""
        self.max_frame_size = max_frame_size

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[list[Frame], list[FrameError]]:
        """Add ``data`` read from the socket; return the frames and errors now complete."""
        frames, self._buffer, errors = split_frames(
            self._buffer + bytes(data), max_frame_size=self.max_frame_size)
        return frames, errors

    def clear(self) -> None:
        """Drop buffered bytes (e.g. on reconnect)."""
        self._buffer = b""
