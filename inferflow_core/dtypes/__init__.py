"""Inferflow data types: names, binary cell encodings and the one text format.

See docs/go-compatibility.md §1.3 and §4.3-4.5. The package: :mod:`.datatype` (the enum, its spellings and
numpy dtypes), :mod:`.numeric` (Go-like casts between element types), :mod:`.cells` (values <-> bytes),
:mod:`.parse` (text -> values), :mod:`.formatting` (values -> text), :mod:`.convert` (between those forms).

Binary cells are little-endian: fixed-width scalars are one element, fixed-width vectors are the elements
concatenated (length implied), BOOL is one 0/1 byte per element (any non-zero byte decodes as true),
STRING is raw UTF-8, STRING_VECTOR is ``k`` uint16-LE lengths followed by the ``k`` strings.

Text: vectors are parsed with ``:`` between elements and printed with ``,`` (Go ``%v`` float rules).
FP16/FP8 values are always produced from float32 (text is parsed at float32 precision, casts go via float32),
then rounded to nearest-even. FP8E4M3 ("fn", no infinities) overflow (|x| >= 480, also +-Inf/NaN) -> NaN
0x7F with the sign kept; FP8E5M2 overflow -> +-Inf (0x7C), NaN -> 0x7F (sign kept) — the PyTorch/c10 rules.
"""

from .cells import (
    array_to_cells,
    cells_to_array,
    decode_array,
    decode_string_vector,
    encode_array,
    encode_string_vector,
)
from .convert import bytes_to_text, cast_array, text_to_bytes
from .datatype import DataType, DataTypeError, from_kserve, parse_dtype
from .formatting import format_column, format_value
from .parse import parse_text, parse_text_column

__all__ = [
    "DataType", "DataTypeError", "array_to_cells", "bytes_to_text", "cast_array", "cells_to_array",
    "decode_array", "decode_string_vector", "encode_array", "encode_string_vector", "format_column",
    "format_value", "from_kserve", "parse_dtype", "parse_text", "parse_text_column", "text_to_bytes",
]  # fmt: skip
