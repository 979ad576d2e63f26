"""Confidence intervals for paired differences between two training arms, by ``scipy.stats.bootstrap``.

The data are a ``(seeds, problems)`` matrix ``D`` of paired differences: arm minus reference arm, same seed (same
data order and sampling seed), same held-out problem. Both seeds and problems are samples from larger populations,
so the interval comes from a two-way cluster bootstrap: scipy resamples the seed indices and the problem indices
independently (two samples, ``paired=False``), and the statistic averages ``D`` over the resampled rows and columns.
With one seed only the problems are resampled. scipy needs two or more observations per resampled axis; an axis of
one is held fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapConfig:
    """Settings of every interval in a comparison (recorded in its JSON).

    Attributes:
        resamples: bootstrap resamples (scipy's ``n_resamples``).
        confidence: confidence level of the two-sided interval.
        method: scipy's interval method: ``"percentile"``, ``"basic"`` or ``"BCa"``.
        seed: seed of the resampling (the same seed gives the same interval).
    """

    resamples: int = 10_000
    confidence: float = 0.95
    method: str = "percentile"
    seed: int = 0

    def __post_init__(self):
        if self.resamples < 1 or not 0 < self.confidence < 1:
            raise ValueError("bootstrap resamples must be >= 1 and confidence in (0, 1).")
        if self.method not in ("percentile", "basic", "BCa"):
            raise ValueError(f"bootstrap method must be 'percentile', 'basic' or 'BCa'; got {self.method!r}.")

    def to_dict(self) -> dict:
        return {**asdict(self), "function": "scipy.stats.bootstrap",
                "resampling": "two-way cluster: seeds and problems resampled independently (paired=False)"}


def _interval(blocks: Sequence[np.ndarray], statistic, config: BootstrapConfig) -> tuple[float, float] | None:
    """Bootstrap interval of ``statistic(*index_arrays)`` where each block's index array is resampled; axes of
    length 1 are held fixed. ``None`` when nothing can be resampled."""
    from scipy.stats import bootstrap

    sizes = [len(b) for b in blocks]
    varying = [i for i, n in enumerate(sizes) if n >= 2]
    if not varying:
        return None
    fixed = {i: np.arange(n) for i, n in enumerate(sizes)}

    def stat(*resampled, axis=-1):
        indices = dict(fixed)
        for i, r in zip(varying, resampled):
            indices[i] = np.asarray(r).astype(np.intp)
        return statistic(*(indices[i] for i in range(len(sizes))))

    data = tuple(np.arange(sizes[i]) for i in varying)
    result = bootstrap(data, stat, n_resamples=config.resamples, confidence_level=config.confidence,
                       method=config.method, paired=False, vectorized=True, batch=500,
                       rng=np.random.default_rng(config.seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def _cell_mean(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Mean of ``matrix[rows][:, cols]``; ``rows``/``cols`` may carry leading batch axes ``(..., n)``."""
    rows, cols = np.broadcast_arrays(rows[..., :, None], cols[..., None, :])
    return matrix[rows, cols].mean(axis=(-2, -1))


def paired_difference(diff: np.ndarray, config: BootstrapConfig) -> dict:
    """Mean of a ``(seeds, problems)`` difference matrix with its bootstrap interval.

    Returns ``{"mean", "low", "high", "seeds", "problems"}`` (``low``/``high`` ``None`` when there is a single
    seed and a single problem); raises ``ValueError`` for an empty matrix.
    """
    diff = np.asarray(diff, dtype=float)
    if diff.ndim != 2 or diff.size == 0:
        raise ValueError(f"paired differences need a non-empty (seeds, problems) matrix; got shape {diff.shape}.")
    ci = _interval([np.arange(diff.shape[0]), np.arange(diff.shape[1])],
                   lambda rows, cols: _cell_mean(diff, rows, cols), config)
    return {"mean": float(diff.mean()), "low": ci[0] if ci else None, "high": ci[1] if ci else None,
            "seeds": diff.shape[0], "problems": diff.shape[1]}


def difference_of_differences(diff: np.ndarray, columns_a: Sequence[int], columns_b: Sequence[int],
                              config: BootstrapConfig) -> dict:
    """Mean paired difference over problem columns ``columns_a`` minus that over ``columns_b`` (e.g. the gain on
    hard problems minus the gain on easy ones), with a bootstrap interval that resamples seeds and, separately
    within each group, problems (a stratified two-way bootstrap: each resample keeps the group sizes).

    Returns ``{"mean", "low", "high", "seeds", "problems_a", "problems_b"}``; raises ``ValueError`` when a group
    is empty.
    """
    diff = np.asarray(diff, dtype=float)
    a, b = np.asarray(columns_a, dtype=np.intp), np.asarray(columns_b, dtype=np.intp)
    if not len(a) or not len(b):
        raise ValueError("a difference of differences needs problems in both groups.")

    def statistic(rows, ia, ib):
        return _cell_mean(diff, rows, a[ia]) - _cell_mean(diff, rows, b[ib])

    point = float(diff[:, a].mean() - diff[:, b].mean())
    ci = _interval([np.arange(diff.shape[0]), np.arange(len(a)), np.arange(len(b))], statistic, config)
    return {"mean": point, "low": ci[0] if ci else None, "high": ci[1] if ci else None, "seeds": diff.shape[0],
            "problems_a": len(a), "problems_b": len(b)}
