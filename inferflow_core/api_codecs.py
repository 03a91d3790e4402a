"""The value codecs plugins use, as one namespace: ``from inferflow_core.api import codecs``.

Data types by name (``parse_dtype``), numpy conversions (``cast_array``), request/response text
(``parse_text_column``, ``format_column``, ``bytes_to_text``, ``text_to_bytes``), the binary layouts of
the wire (``encode_array``, ``decode_array``, ``encode_string_vector``, ``decode_string_vector``,
``array_to_cells``, ``cells_to_array``, ``from_kserve``) and protobuf wire-format
primitives (``varint``, ``length_delimited``) for messages written as bytes directly.
"""

from __future__ import annotations

from .dtypes import (
    array_to_cells,
    bytes_to_text,
    cast_array,
    cells_to_array,
    decode_array,
    decode_string_vector,
    encode_array,
    encode_string_vector,
    format_column,
    from_kserve,
    parse_dtype,
    parse_text_column,
    text_to_bytes,
)
from .wireformat import length_delimited, varint

__all__ = [
    "array_to_cells",
    "bytes_to_text",
    "cast_array",
    "cells_to_array",
    "decode_array",
    "decode_string_vector",
    "encode_array",
    "encode_string_vector",
    "format_column",
    "from_kserve",
    "length_delimited",
    "parse_dtype",
    "parse_text_column",
    "text_to_bytes",
    "varint",
]
