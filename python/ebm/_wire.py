"""The protobuf wire format of datasets/trajectory/trajectory.proto, by hand: the messages are
small and fixed, and this keeps `ebm.trajectory` free of generated code and of a protobuf runtime
version. Unknown fields are skipped, as protobuf does; malformed bytes raise ValueError."""
import struct

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def _varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def fields(buf):
    """Yields (field number, wire type, value) of a message; LENGTH values are memoryviews."""
    buf = memoryview(buf).cast("B")
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ValueError("fixed64 runs past the end of the message")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ValueError("fixed32 runs past the end of the message")
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            if size > end - pos:
                raise ValueError(f"length {size} runs past the end of the message")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def as_str(value):
    return bytes(value).decode("utf-8", errors="replace")


def as_fixed64(value):
    return struct.unpack("<Q", value)[0]


def as_double(value):
    return struct.unpack("<d", value)[0]


def as_floats(value):
    if len(value) % 4:
        raise ValueError(f"packed floats of {len(value)} bytes (not a multiple of 4)")
    return np.frombuffer(value, dtype="<f4")


# ---- writing ------------------------------------------------------------------------------

def _put_varint(out, value):
    value &= (1 << 64) - 1
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def put_key(out, number, wire):
    _put_varint(out, (number << 3) | wire)


def put_uint(out, number, value):
    """A varint field; proto3 omits zeros."""
    if value:
        put_key(out, number, VARINT)
        _put_varint(out, int(value))


def put_bytes(out, number, data, always=False):
    if data or always:
        put_key(out, number, LENGTH)
        _put_varint(out, len(data))
        out += data


def put_str(out, number, text):
    put_bytes(out, number, text.encode("utf-8"))


def put_fixed64(out, number, value):
    if value:
        put_key(out, number, FIXED64)
        out += struct.pack("<Q", value)


def put_double(out, number, value):
    if value:
        put_key(out, number, FIXED64)
        out += struct.pack("<d", value)
