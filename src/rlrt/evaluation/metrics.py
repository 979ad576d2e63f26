"""avg@k and the unbiased pass@k estimator."""

from __future__ import annotations

from collections.abc import Sequence
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: ``1 - C(n - c, k) / C(n, k)``
    (Chen et al. 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def avg_at_k(correct: Sequence[float]) -> float:
    """Mean correctness over the samples of one problem."""
    return sum(correct) / len(correct) if correct else 0.0


def k_values(n: int) -> list[int]:
    """The k reported for ``n`` samples: 1, 2, 4, ... up to ``n`` (and ``n`` itself)."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def correct_counts(per_problem: Sequence[Sequence[float | None]]) -> list[int | None]:
    """Correct samples per problem (``None`` for a problem with an unscorable sample): the compact record kept
    for every held-out evaluation, from which avg@k, pass@k and the strata are recomputed."""
    return [None if not samples or None in samples else int(sum(samples)) for samples in per_problem]


def summarize(per_problem: Sequence[Sequence[float | None]]) -> dict[str, float]:
    """``avg@n`` and ``pass@k`` over problems; problems whose gold answer could not be parsed (``None``) are dropped."""
    scored = [[float(x) for x in samples] for samples in per_problem if samples and None not in samples]
    if not scored:
        return {"problems": 0}
    n = min(len(s) for s in scored)
    out: dict[str, float] = {"problems": len(scored), "samples": n, "unscorable": len(per_problem) - len(scored)}
    out[f"avg@{n}"] = sum(avg_at_k(s[:n]) for s in scored) / len(scored)
    for k in k_values(n):
        out[f"pass@{k}"] = sum(pass_at_k(n, int(sum(s[:n])), k) for s in scored) / len(scored)
    return out
