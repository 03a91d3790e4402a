"""ComponentMatrix: the columnar, numpy-backed table a request's components read and write.

Rows are targets (or slates / pairs in a :class:`SlateMatrix`). Each column has a name, a declared
:class:`DataType`, a typed value array and a validity mask:

* fixed-width scalars: 1-D array of the type's numpy dtype;
* fixed-width vectors: 2-D array ``(rows, dim)`` (``dim`` is fixed by the first write);
* strings and string vectors: object arrays.

A column may also hold the request's *text* for a feature (what existing Inferflow clients send). Text
is kept as sent and used as a fallback: a typed cell that is present wins, a missing typed cell is
parsed from the text when a consumer reads the column (Go Inferflow's "request feature as fallback" rule).
"""

from .columns import Column, ColumnBlock, empty_values
from .component import ComponentMatrix
from .slate import SlateMatrix

__all__ = ["Column", "ColumnBlock", "ComponentMatrix", "SlateMatrix", "empty_values"]
