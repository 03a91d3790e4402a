"""inferflow-numerix: the NumerixComponent, a Numerix gRPC client and an embedded numpy evaluator."""

from __future__ import annotations

from importlib.metadata import version

from .language import ExpressionError, Program, parse

__version__ = version("inferflow-numerix")  # single source: pyproject.toml
__all__ = ["ExpressionError", "Program", "__version__", "parse"]
