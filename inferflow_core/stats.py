"""Score comparison in numpy (no scipy): ranks with ties averaged, Spearman's rho, Kendall's tau-b,
top-k overlap. Shared by the predator plugin's shadow divergence and ``inferflow replay``.

Each function takes two equally long 1-D arrays of one request's scores and returns ``nan`` when the
statistic is undefined (fewer than two items, or a constant side).
"""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, tied values sharing the mean of their ranks (as scipy's ``rankdata``)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks."""
    if len(a) < 2:
        return float("nan")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties in either side accounted for), O(n^2) memory in blocks of rows: fine for
    the few hundred targets of one request."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = a.size
    if n < 2:
        return float("nan")
    concordant = discordant = ties_a = ties_b = 0
    iu = np.triu_indices(n, k=1)
    for start in range(0, iu[0].size, 1 << 20):
        i, j = iu[0][start : start + (1 << 20)], iu[1][start : start + (1 << 20)]
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        prod = da * db
        concordant += int((prod > 0).sum())
        discordant += int((prod < 0).sum())
        ties_a += int(((da == 0) & (db != 0)).sum())
        ties_b += int(((db == 0) & (da != 0)).sum())
    denom = np.sqrt(float(concordant + discordant + ties_a) * float(concordant + discordant + ties_b))
    return float((concordant - discordant) / denom) if denom > 0 else float("nan")


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the ``k`` highest-scored items by ``a`` that are also among the ``k`` highest by ``b``
    (ties broken by position)."""
    n = len(a)
    if n == 0 or k <= 0:
        return float("nan")
    k = min(k, n)
    top_a = set(np.argsort(-np.asarray(a, dtype=np.float64), kind="mergesort")[:k].tolist())
    top_b = set(np.argsort(-np.asarray(b, dtype=np.float64), kind="mergesort")[:k].tolist())
    return len(top_a & top_b) / k
