"""Protobuf wire-format primitives, for the few places that write messages as bytes directly because
building them through protobuf-python costs more than the work they describe (responses, logs,
Numerix requests). One implementation; plugins get it through ``inferflow_core.api``."""

from __future__ import annotations

_SMALL = [bytes((i,)) for i in range(128)]


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(field: int, wire_type: int = 2) -> bytes:
    """A field key: ``field`` number and wire type (2 = length-delimited, 0 = varint)."""
    return varint((field << 3) | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    """A length-delimited field (bytes, string or sub-message), always written."""
    return tag(field) + varint(len(payload)) + payload
