"""inferflow-numerix: the NumerixComponent, a Numerix gRPC client and an embedded numpy evaluator."""

from __future__ import annotations

from .language import ExpressionError, Program, parse

__version__ = "0.1.0"
__all__ = ["ExpressionError", "Program", "__version__", "parse"]
