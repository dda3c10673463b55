# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled twin of :func:`protocols.ykc.heartbeats.python_heartbeat_replies` (built by
``make venv``: ``cythonize -i``); the same contract, byte for byte (tested against it)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcmp, memcpy

cdef enum:
    SIZE = 17

cdef unsigned short TABLE[256]


cdef void _fill_table():
    """CRC-16/MODBUS, reflected polynomial 0xA001 (reference §1.2)."""
    cdef unsigned short crc
    cdef int byte, bit
    for byte in range(256):
        crc = byte
        for bit in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        TABLE[byte] = crc


_fill_table()


cdef inline unsigned short _crc16(const unsigned char* data, Py_ssize_t size) noexcept nogil:
    cdef unsigned short crc = 0xFFFF
    cdef Py_ssize_t i
    for i in range(size):
        crc = (crc >> 8) ^ TABLE[(crc ^ data[i]) & 0xFF]
    return crc


def heartbeat_replies(const unsigned char[::1] data not None, bytes pile not None):
    cdef Py_ssize_t size = data.shape[0]
    cdef Py_ssize_t pos = 0
    cdef const unsigned char* frame
    cdef const unsigned char* code
    cdef unsigned char gun
    cdef unsigned short crc
    cdef char* out
    if len(pile) != 7:
        raise ValueError("a pile code is 7 BCD bytes")
    if size < SIZE:
        return 0, b""
    code = <const unsigned char*> PyBytes_AS_STRING(pile)
    while pos + SIZE <= size:
        frame = &data[pos]
        if (frame[0] != 0x68 or frame[1] != 0x0D or frame[4] != 0 or frame[5] != 0x03
                or memcmp(frame + 6, code, 7) != 0):
            break
        gun = frame[13]
        if gun & 0x0F > 9 or gun >> 4 > 9:
            break
        if _crc16(frame + 2, 13) != (frame[15] | frame[16] << 8):
            break
        pos += SIZE
    if pos == 0:
        return 0, b""
    replies = PyBytes_FromStringAndSize(NULL, pos)
    out = PyBytes_AS_STRING(replies)
    memcpy(out, &data[0], pos)
    cdef Py_ssize_t start
    for start in range(0, pos, SIZE):
        out[start + 5] = 0x04
        out[start + 14] = 0
        crc = _crc16(<const unsigned char*> out + start + 2, 13)
        out[start + 15] = crc & 0xFF
        out[start + 16] = crc >> 8
    return pos // SIZE, replies
