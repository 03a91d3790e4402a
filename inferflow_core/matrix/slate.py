"""SlateMatrix: one row per slate (or pair) of a slate-wise or pair-wise request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .component import ComponentMatrix

__all__ = ["SlateMatrix"]


class SlateMatrix(ComponentMatrix):
    """One row per slate (or pair); ``target_indices[i]`` are the target rows of slate ``i``."""

    def __init__(self, target_indices: Sequence[np.ndarray]) -> None:
        super().__init__(len(target_indices))
        self.target_indices = [np.asarray(t, dtype=np.intp) for t in target_indices]
        self.set_text("slate_target_indices", [",".join(map(str, t.tolist())) for t in self.target_indices])

    def slate_supplies(self, target: ComponentMatrix, name: str) -> bool:
        """Whether a slate component reading ``name`` gets it from this matrix: the slate matrix has it
        and the target matrix has no value of it (absent, or declared but empty)."""
        if not self.has(name) or name == "slate_target_indices":
            return False
        return not target.has(name) or not target.read(name)[1].any()

    def slate_rows(
        self, target: ComponentMatrix, slate: int, rows: np.ndarray, names: Sequence[str]
    ) -> ComponentMatrix:
        """``target.take(rows)`` (the target rows of slate ``slate``) where each of ``names`` the slate
        matrix supplies (:meth:`slate_supplies`) is the slate's own cell repeated on every row."""
        sub = target.take(rows)
        supplied = [n for n in names if self.slate_supplies(target, n)]
        if supplied:
            repeated = self.take(np.full(len(rows), slate, dtype=np.intp))
            for name in supplied:
                sub._cols[name] = repeated._cols[name]
        return sub
