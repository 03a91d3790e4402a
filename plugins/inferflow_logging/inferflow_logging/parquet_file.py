"""The parquet log chunk written without a ``pq.ParquetWriter`` per chunk, byte-identical to pyarrow's.

Every chunk of one shape (rows ``n``, schema entries ``k``) has the same file around its cell bytes:
the key column (positions ``0..k-1`` per row), the repetition / definition levels of both columns and
every footer field except a few sizes depend only on ``(n, k)``. Only the value column's page data
(PLAIN ``byte_array``: a u32-LE length then the bytes, per cell in row-major order) varies, and with it
the page header's two sizes and the footer's sizes of that column chunk and of the row group.

A :class:`Template` is cut from a file pyarrow wrote for a chunk of that shape: the bytes before the
value column's page header, the page header and the footer parsed as Thrift compact structures, the
levels at the head of the page. A new chunk is then the head, the header with its sizes set, the levels,
the new values and the footer with its sizes moved by the same delta. :class:`ParquetChunkWriter`
uses a template as is for chunks whose values have the template's length (every size is the
template's), and for other lengths only after it produced exactly pyarrow's bytes for one of them
(verified once per shape; a shape that fails stays on pyarrow). A template applies only while the
value page stays far below pyarrow's 1 MiB page size (one data page per column chunk); it is cut the
second time a shape is met and the 64 most recently used are kept.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("inferflow.logging")
MAX_PAGE_BYTES = 768 * 1024  # pyarrow starts a new data page at 1 MiB: stay well below it
_MAGIC = b"PAR1"

# Thrift compact protocol types
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

Field = list[Any]  # [field id, compact type, value]; a struct is a list of fields in wire order


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = out = 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def value(self, ctype: int) -> Any:
        if ctype in (_TRUE, _FALSE):
            return ctype == _TRUE
        if ctype == _BYTE:
            return self.byte()
        if ctype in (_I16, _I32, _I64):
            return self.zigzag()
        if ctype == _DOUBLE:
            raw = bytes(self.data[self.pos : self.pos + 8])
            self.pos += 8
            return raw
        if ctype == _BINARY:
            size = self.varint()
            raw = bytes(self.data[self.pos : self.pos + size])
            self.pos += size
            return raw
        if ctype in (_LIST, _SET):
            head = self.byte()
            size, etype = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return (
                etype,
                [self.byte() if etype in (_TRUE, _FALSE) else self.value(etype) for _ in range(size)],
            )
        if ctype == _MAP:
            raise ValueError("thrift map in a parquet footer")
        if ctype == _STRUCT:
            return self.struct()
        raise ValueError(f"thrift compact type {ctype}")

    def struct(self) -> list[Field]:
        fields: list[Field] = []
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            delta, ctype = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            fields.append([fid, ctype, self.value(ctype)])
            last = fid


def _varint(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zigzag(out: bytearray, v: int) -> None:
    _varint(out, (v << 1) ^ (v >> 63))


class _Pieces:
    """A struct encoded once with some integer fields left open (``slots``): static bytes between them."""

    def __init__(self, fields: list[Field], slots: list[Field]) -> None:
        self.slot_ids = {id(f) for f in slots}
        self.pieces: list[bytes | Field] = []
        self.out = bytearray()
        _write_struct(self.out, fields, self)
        self.pieces.append(bytes(self.out))
        del self.out

    def open(self, field: Field) -> bool:
        if id(field) not in self.slot_ids:
            return False
        self.pieces.append(bytes(self.out))
        self.pieces.append(field)
        self.out.clear()
        return True

    def encode(self, values: dict[int, int]) -> bytes:
        """The struct with each open field ``f`` holding ``values[id(f)]``."""
        out = bytearray()
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out += piece
            else:
                _zigzag(out, values[id(piece)])
        return bytes(out)


def _write_value(out: bytearray, ctype: int, value: Any, pieces: _Pieces | None = None) -> None:
    if ctype in (_TRUE, _FALSE):
        return  # in the field header
    if ctype == _BYTE:
        out.append(value)
    elif ctype in (_I16, _I32, _I64):
        _zigzag(out, value)
    elif ctype == _DOUBLE:
        out += value
    elif ctype == _BINARY:
        _varint(out, len(value))
        out += value
    elif ctype in (_LIST, _SET):
        etype, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | etype)
        else:
            out.append(0xF0 | etype)
            _varint(out, len(items))
        for item in items:
            if etype in (_TRUE, _FALSE):
                out.append(item)
            else:
                _write_value(out, etype, item, pieces)
    elif ctype == _STRUCT:
        _write_struct(out, value, pieces)
    else:
        raise ValueError(f"thrift compact type {ctype}")


def _write_struct(out: bytearray, fields: list[Field], pieces: _Pieces | None = None) -> None:
    last = 0
    for field in fields:
        fid, ctype, value = field
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | ctype)
        else:
            out.append(ctype)
            _zigzag(out, fid)
        last = fid
        if pieces is not None and pieces.open(field):
            out = pieces.out
            continue
        _write_value(out, ctype, value, pieces)
    out.append(0)


def encode_struct(fields: list[Field]) -> bytes:
    out = bytearray()
    _write_struct(out, fields)
    return bytes(out)


def _field(fields: list[Field], fid: int) -> Field | None:
    for f in fields:
        if f[0] == fid:
            return f
    return None


def _need(fields: list[Field], fid: int) -> Field:
    got = _field(fields, fid)
    if got is None:
        raise ValueError(f"parquet template: thrift field {fid} missing")
    return got


@dataclass
class Template:
    """A pyarrow-written chunk of one shape, cut around its value column's page (see the module doc)."""

    head: bytes  # "PAR1" + the key column chunk (+ anything else before the value page header)
    page_header: list[Field]  # PageHeader of the value column's only data page
    levels: bytes  # repetition + definition levels at the head of that page
    footer: list[Field]  # FileMetaData
    values_len: int  # the template's PLAIN value bytes
    chunk_size: int  # the template's value column chunk (page header + page)
    unencoded: Field | None  # SizeStatistics.unencoded_byte_array_data_bytes of the value column
    sizes: list[Field]  # footer fields that grow with the value column chunk

    @classmethod
    def cut(cls, data: bytes, values: bytes | memoryview) -> Template:
        """The template of ``data`` (a pyarrow parquet chunk) whose value page holds ``values``."""
        if data[:4] != _MAGIC or data[-4:] != _MAGIC:
            raise ValueError("parquet template: not a parquet file")
        (footer_len,) = struct.unpack_from("<I", data, len(data) - 8)
        footer_start = len(data) - 8 - footer_len
        reader = _Reader(data, footer_start)
        footer = reader.struct()
        if reader.pos != len(data) - 8 or encode_struct(footer) != data[footer_start : len(data) - 8]:
            raise ValueError("parquet template: footer does not round-trip")
        groups = _need(footer, 4)[2][1]
        if len(groups) != 1:
            raise ValueError("parquet template: expected one row group")
        group = groups[0]
        columns = _need(group, 1)[2][1]
        if len(columns) != 2:
            raise ValueError("parquet template: expected two column chunks")
        chunk = columns[1]
        if any(_field(chunk, fid) is not None for fid in (4, 5, 6, 7)):  # offset / column index
            raise ValueError("parquet template: page index present")
        meta = _need(chunk, 3)[2]
        path = [bytes(p) for p in _need(meta, 3)[2][1]]
        if path[-1:] != [b"value"]:
            raise ValueError(f"parquet template: second column is {path}")
        start = _need(meta, 9)[2]
        total = _need(meta, 7)[2]
        if _need(meta, 6)[2] != total or start + total != footer_start:
            raise ValueError("parquet template: value column chunk not last or compressed")
        for fid in (10, 11, 12):  # index page, dictionary page, statistics
            if _field(meta, fid) is not None:
                raise ValueError(f"parquet template: column metadata field {fid} present")
        page_reader = _Reader(data, start)
        page_header = page_reader.struct()
        if encode_struct(page_header) != data[start : page_reader.pos]:
            raise ValueError("parquet template: page header does not round-trip")
        page_size = _need(page_header, 3)[2]
        if _need(page_header, 2)[2] != page_size or page_reader.pos + page_size != start + total:
            raise ValueError("parquet template: value column is not one uncompressed page")
        if _field(page_header, 4) is not None:
            raise ValueError("parquet template: page checksum present")
        page = data[page_reader.pos : page_reader.pos + page_size]
        values_len = len(values)
        if page[page_size - values_len :] != bytes(values):
            raise ValueError("parquet template: value page does not end with the PLAIN values")
        file_offset = _field(chunk, 2)
        sizes = [_need(meta, 6), _need(meta, 7), _need(group, 2)]
        group_compressed = _field(group, 6)
        if group_compressed is not None:
            sizes.append(group_compressed)
        if file_offset is not None and file_offset[2] not in (0, start):  # 0: not set
            if file_offset[2] != start + total:
                raise ValueError("parquet template: unexpected column chunk file offset")
            sizes.append(file_offset)
        stats = _field(meta, 16)
        unencoded = None if stats is None else _field(stats[2], 1)
        return cls(
            head=bytes(data[:start]),
            page_header=page_header,
            levels=bytes(page[: page_size - values_len]),
            footer=footer,
            values_len=values_len,
            chunk_size=total,
            unencoded=unencoded,
            sizes=sizes,
        )

    def __post_init__(self) -> None:
        self._header_sizes = [_need(self.page_header, 2), _need(self.page_header, 3)]
        slots = [*self.sizes, *([self.unencoded] if self.unencoded is not None else [])]
        if any(f[1] not in (_I32, _I64) for f in [*self._header_sizes, *slots]):
            raise ValueError("parquet template: a size field is not an integer")
        self._header = _Pieces(self.page_header, self._header_sizes)
        self._footer = _Pieces(self.footer, slots)
        self._last: tuple[tuple[int, int], tuple[bytes, bytes]] = ((-1, -1), (b"", b""))

    def write(self, values: bytes | memoryview, cells: int) -> bytes:
        """The file of a chunk of this shape whose PLAIN values are ``values`` (``cells`` cells)."""
        return b"".join(self.pieces(values, cells))

    def pieces(self, values: bytes | memoryview, cells: int) -> list[bytes | memoryview]:
        """:meth:`write` as the file's consecutive pieces (``values`` not copied)."""
        length = len(values)
        if self._last[0] == (length, cells):  # the sizes of the previous chunk (fixed-width cells)
            header, footer = self._last[1]
        else:
            header, footer = self._sized(length, cells)
            self._last = ((length, cells), (header, footer))
        return [self.head, header, self.levels, values, footer]

    def _sized(self, length: int, cells: int) -> tuple[bytes, bytes]:
        """(page header, footer with its length and the magic) of a chunk of ``length`` value bytes."""
        page_size = len(self.levels) + length
        header = self._header.encode({id(f): page_size for f in self._header_sizes})
        delta = len(header) + page_size - self.chunk_size
        sizes = {id(f): f[2] + delta for f in self.sizes}
        if self.unencoded is not None:
            sizes[id(self.unencoded)] = length - 4 * cells
        footer = self._footer.encode(sizes)
        return header, footer + struct.pack("<I", len(footer)) + _MAGIC


class ParquetChunkWriter:
    """Chunk files by template once a shape's template is verified against pyarrow, else by pyarrow."""

    MAX_SHAPES = 64  # templates kept (least recently used dropped first)
    MAX_SEEN = 4096

    def __init__(self) -> None:
        self._templates: dict[tuple[int, int], Template | None] = {}  # None: this shape stays on pyarrow
        self._verified: set[tuple[int, int]] = set()
        self._seen: set[tuple[int, int]] = set()  # shapes met once: a template is cut the second time

    def write(self, shape: tuple[int, int], values: np.ndarray, reference: Callable[[], bytes]) -> bytes:
        """The chunk file of ``shape`` (rows, entries) holding PLAIN ``values`` (uint8); ``reference``
        writes the same chunk with pyarrow (called for the first chunks of a shape and as fallback)."""
        return b"".join(self.pieces(shape, values, reference))

    def pieces(
        self, shape: tuple[int, int], values: np.ndarray, reference: Callable[[], bytes]
    ) -> list[bytes | memoryview]:
        """:meth:`write` as the file's consecutive pieces (``values`` not copied)."""
        if values.nbytes > MAX_PAGE_BYTES:
            return [reference()]
        data = np.ascontiguousarray(values).data.cast("B")
        cells = shape[0] * shape[1]
        template = self._templates.get(shape)
        if template is not None and (shape in self._verified or len(data) == template.values_len):
            self._templates[shape] = self._templates.pop(shape)  # most recently used last
            return template.pieces(data, cells)  # same value length as the template: same sizes
        if shape in self._templates:  # the first chunk of this shape whose sizes differ: verify
            expected = reference()
            if template is None:
                return [expected]
            if template.write(data, cells) == expected:
                self._verified.add(shape)
            else:
                log.warning("inference logging: parquet chunk template for %s differs from pyarrow", shape)
                self._templates[shape] = None
            return [expected]
        expected = reference()
        if shape not in self._seen:  # a shape met once (chunk sizes that vary a lot): no template yet
            if len(self._seen) >= self.MAX_SEEN:
                self._seen.clear()
            self._seen.add(shape)
            return [expected]
        while len(self._templates) >= self.MAX_SHAPES:
            oldest = next(iter(self._templates))
            del self._templates[oldest]
            self._verified.discard(oldest)
        try:
            self._templates[shape] = Template.cut(expected, data)
        except (ValueError, IndexError, struct.error) as exc:
            log.info("inference logging: parquet chunks of shape %s written by pyarrow (%s)", shape, exc)
            self._templates[shape] = None
        return [expected]
