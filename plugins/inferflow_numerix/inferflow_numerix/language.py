"""The Numerix expression language: whitespace-separated postfix tokens over columns (go-compatibility §5.4).

``parse`` turns an expression into a :class:`Program` once; ``Program.evaluate`` runs it column-wise
with numpy in float32 or float64. Each token resolves, in this order, as

1. a binary operator ``+ - * / ^ > < >= <= == min max & |`` (``a b -`` is ``a - b``),
2. a unary operator ``exp log abs norm_min_max percentile_rank norm_percentile_0_99 norm_percentile_5_95``,
3. a numeric literal: the *whole token* matches ``-?\\d+(\\.\\d+)?`` (``2``, ``-0.5``),
4. a column name (a variable of the call's schema).

So ``-`` is subtraction while ``-1`` is a literal, a column named ``2`` or ``min`` cannot be referenced,
and ``1e3``/``.5`` are not literals (they would have to be column names). Go Inferflow also turns digits
*inside* identifiers into constants; here they stay part of the identifier (``x2`` is a column).

Errors (every one fails the whole call, naming the token): an unknown token (a name that is no column
of the call), stack underflow, values left on the stack, division by zero in any row, ``log`` of a
non-positive value (or NaN) in any row, ``&``/``|`` operands other than 0/1. Underflow and leftovers
are found when parsing (the stack depth does not depend on data), unknown names when evaluating.
Comparisons give 1.0/0.0; other IEEE results (``exp`` overflow to inf, ``^`` of a negative base with a
fractional exponent giving NaN) pass through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .functions import BINARY_OPS, COLUMN_OPS, UNARY_OPS, OpError

__all__ = ["ExpressionError", "Program", "parse"]

LITERAL = re.compile(r"-?\d+(\.\d+)?")
_PUSH_LITERAL, _PUSH_NAME, _UNARY, _BINARY = range(4)


class ExpressionError(ValueError):
    """An expression cannot be parsed or evaluated; the message names the offending token."""


@dataclass(frozen=True)
class _Step:
    kind: int
    token: str
    position: int  # 1-based token position, for messages
    value: float = 0.0


class Program:
    """A parsed expression. Immutable and shareable between requests and threads."""

    def __init__(self, expression: str, steps: tuple[_Step, ...]) -> None:
        self.expression = expression
        self.steps = steps
        self.names = tuple(dict.fromkeys(s.token for s in steps if s.kind == _PUSH_NAME))
        # planned once: each step with its function looked up; literals per evaluation dtype on first use
        self._code = tuple(
            (
                s.kind,
                s,
                UNARY_OPS[s.token]
                if s.kind == _UNARY
                else BINARY_OPS[s.token]
                if s.kind == _BINARY
                else None,
                s.kind == _UNARY and s.token in COLUMN_OPS,
            )
            for s in steps
        )
        self._literals: dict[np.dtype, tuple[np.ndarray | None, ...]] = {}
        self._copy_out = bool(steps) and steps[-1].kind == _PUSH_NAME

    def __repr__(self) -> str:
        return f"Program({self.expression!r})"

    def evaluate(self, columns: Mapping[str, np.ndarray], rows: int, dtype: np.dtype | type) -> np.ndarray:
        """Run over ``columns`` (name -> 1-D array of ``rows`` values); returns a new 1-D array of ``dtype``.

        Columns not of ``dtype`` are converted. Raises :class:`ExpressionError` on any rule violation.
        """
        dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        literals = self._literals.get(dt)
        if literals is None:
            literals = self._literals[dt] = tuple(_literal(s, dt) for s in self.steps)
        stack: list[np.ndarray] = []
        push, pop = stack.append, stack.pop
        with np.errstate(all="ignore"):
            for (kind, step, fn, column_op), literal in zip(self._code, literals, strict=True):
                if kind == _PUSH_NAME:
                    col = columns.get(step.token)
                    if col is None:
                        raise ExpressionError(
                            f"unknown token {step.token!r} at position {step.position}: "
                            "not an operator, a numeric literal or a column of the request"
                        )
                    push(np.asarray(col, dtype=dt))
                    continue
                if kind == _PUSH_LITERAL:
                    push(literal)  # type: ignore[arg-type]
                    continue
                if kind == _UNARY:
                    x = pop()
                    if column_op and x.ndim == 0:
                        x = np.full(rows, x, dtype=dt)
                    args: tuple[np.ndarray, ...] = (x,)
                else:
                    b = pop()
                    args = (pop(), b)
                try:
                    result = np.asarray(fn(*args))  # type: ignore[misc]
                except OpError as exc:
                    raise ExpressionError(
                        f"token {step.token!r} at position {step.position}: {exc}"
                    ) from None
                push(result if result.dtype == dt else result.astype(dt))
        out = stack[0]
        if out.ndim == 0:
            return np.full(rows, out, dtype=dt)
        if out.shape != (rows,):
            raise ExpressionError(f"columns have {out.shape[0]} values for {rows} rows")
        return out.copy() if self._copy_out else out  # never alias an input column


def _literal(step: _Step, dt: np.dtype) -> np.ndarray | None:
    """A literal step's value as a read-only 0-d array of ``dt`` (shared by every evaluation)."""
    if step.kind != _PUSH_LITERAL:
        return None
    value = np.asarray(step.value, dtype=dt)
    value.flags.writeable = False
    return value


def parse(expression: str) -> Program:
    """Tokenise and check an expression (see the module docstring); raises :class:`ExpressionError`."""
    tokens = expression.split()
    if not tokens:
        raise ExpressionError("expression is empty")
    steps: list[_Step] = []
    pushed_by: list[str] = []  # which token produced each stack value (for leftover messages)
    for pos, tok in enumerate(tokens, start=1):
        if tok in BINARY_OPS or tok in UNARY_OPS:
            arity = 2 if tok in BINARY_OPS else 1
            if len(pushed_by) < arity:
                raise ExpressionError(
                    f"stack underflow at token {tok!r} (position {pos}): needs {arity} operand(s), "
                    f"has {len(pushed_by)}"
                )
            del pushed_by[len(pushed_by) - arity :]
            steps.append(_Step(_BINARY if arity == 2 else _UNARY, tok, pos))
        elif LITERAL.fullmatch(tok):
            steps.append(_Step(_PUSH_LITERAL, tok, pos, float(tok)))
        else:
            steps.append(_Step(_PUSH_NAME, tok, pos))
        pushed_by.append(tok)
    if len(pushed_by) > 1:
        raise ExpressionError(
            f"{len(pushed_by)} values left on the stack (pushed by tokens {pushed_by!r}); "
            "an expression must reduce to one value"
        )
    return Program(expression, tuple(steps))
