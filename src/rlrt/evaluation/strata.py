"""Difficulty strata of held-out problems and per-stratum avg@k / pass@k curves (pure functions).

A problem's stratum is decided by the *starting* model's own accuracy on it, the fraction of its samples that are
correct: "never solved" (no correct sample), then one stratum per interval between the edges. With the default
edges ``(0.6,)`` the strata are ``never`` (accuracy 0), ``<60%`` (0 < accuracy < 0.6) and ``>=60%``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .metrics import k_values, pass_at_k

DEFAULT_STRATA_EDGES = (0.6,)
NEVER = "never"


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """``edges`` as a tuple; raises ``ValueError`` unless they rise strictly inside (0, 1]."""
    edges = tuple(float(e) for e in edges)
    if any(not 0 < e <= 1 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"strata edges must rise strictly and lie in (0, 1], e.g. 0.3 0.6; got {list(edges)}.")
    return edges


def _percent(edge: float) -> str:
    return f"{100 * edge:g}%"


def stratum_labels(edges: Sequence[float] = DEFAULT_STRATA_EDGES) -> list[str]:
    """Names of the strata, lowest accuracy first: ``["never", "<60%", ">=60%"]`` for edges ``(0.6,)``,
    ``["never", "<30%", "30-60%", ">=60%"]`` for ``(0.3, 0.6)``."""
    edges = check_edges(edges)
    if not edges:
        return [NEVER, ">0%"]
    labels = [NEVER, f"<{_percent(edges[0])}"]
    labels += [f"{_percent(a).rstrip('%')}-{_percent(b)}" for a, b in zip(edges, edges[1:])]
    return labels + [f">={_percent(edges[-1])}"]


def assign_stratum(accuracy: float, edges: Sequence[float] = DEFAULT_STRATA_EDGES) -> str:
    """The stratum label of one problem whose starting accuracy (correct samples / samples) is ``accuracy``."""
    labels = stratum_labels(edges)
    if accuracy <= 0:
        return NEVER
    return labels[1 + sum(accuracy >= e for e in check_edges(edges))]


def assign_strata(correct: Sequence[int | None], samples: int,
                  edges: Sequence[float] = DEFAULT_STRATA_EDGES) -> list[str | None]:
    """Stratum label per problem from its correct-sample count out of ``samples`` (``None`` stays ``None``:
    an unscorable problem belongs to no stratum)."""
    if samples < 1:
        raise ValueError(f"strata need at least one sample per problem; got {samples}.")
    return [None if c is None else assign_stratum(c / samples, edges) for c in correct]


def mean_accuracy(correct: Sequence[int], samples: Sequence[int]) -> float:
    """avg@k over problems: the mean of ``correct / samples`` (each problem may have its own sample count)."""
    if not correct:
        return float("nan")
    return sum(c / n for c, n in zip(correct, samples, strict=True)) / len(correct)


def pass_curve(correct: Sequence[int], samples: int, ks: Sequence[int] | None = None) -> dict[int, float]:
    """Unbiased pass@k (Chen et al. 2021) averaged over problems, for ``ks`` (default 1, 2, 4, ..., ``samples``)."""
    ks = k_values(samples) if ks is None else ks
    if not correct:
        return {k: float("nan") for k in ks}
    return {k: sum(pass_at_k(samples, c, k) for c in correct) / len(correct) for k in ks}


def per_stratum(correct: Sequence[int | None], samples: int, strata: Sequence[str | None],
                labels: Sequence[str]) -> dict[str, dict]:
    """Per stratum label: ``problems`` (count), ``avg`` (avg@``samples``) and ``pass`` (the pass@k curve), from
    one evaluation's correct counts; problems that are unscorable in either the evaluation or the strata are left
    out. Every label appears, with ``problems = 0`` (and NaN scores) where a stratum is empty."""
    if len(correct) != len(strata):
        raise ValueError(f"{len(correct)} evaluated problems but {len(strata)} with a stratum: the held-out sets "
                         "differ (same dataset, limit and order needed).")
    out = {}
    for label in labels:
        mine = [c for c, s in zip(correct, strata) if s == label and c is not None]
        out[label] = {"problems": len(mine), "avg": mean_accuracy(mine, [samples] * len(mine)),
                      "pass": pass_curve(mine, samples)}
    return out


def start_result(payload: dict, dataset: str | None = None, model: str | None = None,
                 source: str = "the --strata-from file", model_flag: str = "--strata_model") -> dict:
    """The starting model's result (one entry of ``results``) in a ``results.json`` (``rlrt eval``'s, or ``rlrt
    compare``'s ``start/results.json``).

    With ``dataset`` (a ``--dataset`` spec) the result on that dataset, compared by
    ``rlrt.data.registry.canonical_spec``: ``chain`` and ``chain:train``, ``default:test`` and ``addition:test``, or
    a local file's relative and absolute path are the same dataset. A result that records no dataset at all is used
    when it is the file's only one (its problems' answers are checked against the evaluated ones afterwards). When
    several models were evaluated on the dataset, ``model`` names the starting one. ``source`` and ``model_flag``
    are how the caller's messages name the file and the flag that sets ``model``. Raises ``ValueError`` with what
    to give instead: a file whose results are all on other datasets, several models and no (or another) ``model``,
    or no per-problem samples."""
    from ..data.registry import canonical_spec

    results = payload.get("results") or []
    candidates = results
    if dataset is not None and results:
        wanted = canonical_spec(dataset)
        candidates = [r for r in results if r.get("dataset") is not None and canonical_spec(r["dataset"]) == wanted]
        if not candidates and len(results) == 1 and results[0].get("dataset") is None:
            candidates = results
        if not candidates:
            held = list(dict.fromkeys(str(r.get("dataset")) for r in results if r.get("dataset") is not None))
            what = "an evaluation of " + held[0] if len(held) == 1 else "evaluations of " + ", ".join(held)
            raise ValueError(f"{source} holds {what}, not {dataset}: give the starting model's "
                             f"results.json on {dataset} (rlrt eval --model <starting model> --dataset {dataset}), "
                             f"or evaluate --dataset {held[0]}.")
    models = list(dict.fromkeys(str(r.get("model")) for r in candidates))
    on = f" on {dataset}" if dataset is not None else ""
    if model is not None:
        chosen = next((r for r in candidates if str(r.get("model")) == model), None)
        if chosen is None:
            raise ValueError(f"{source} has no evaluation of {model}{on}; it holds {models}: pass "
                             f"{model_flag} with one of them.")
    elif len(models) > 1:
        raise ValueError(f"{source} holds several models{on} ({', '.join(models)}): pass "
                         f"{model_flag} with the starting model's name, as it is written there.")
    else:
        chosen = candidates[0] if candidates else None
    if not chosen or not chosen.get("problems"):
        raise ValueError(f"{source} has no per-problem samples: give the results.json that `rlrt eval` "
                         "wrote for the starting model (or compare's start/results.json).")
    return chosen


def strata_from_results(payload: dict, dataset: str | None = None,
                        model: str | None = None) -> tuple[list[int | None], int, list]:
    """``(correct counts, samples, answers)`` per problem of the starting model's result that ``start_result``
    chooses (same arguments and errors): counted over its first ``strata_samples`` samples when the file names
    them, else over all."""
    return start_counts(start_result(payload, dataset, model), payload.get("strata_samples"))


def start_counts(chosen: dict, strata_samples: int | None = None) -> tuple[list[int | None], int, list]:
    """``(correct counts, samples, answers)`` per problem of one starting-model result (``start_result``'s): counted
    over its first ``strata_samples`` samples, or all of them when ``None``."""
    rows = [p["correct"] for p in chosen["problems"]]
    samples = strata_samples or min(len(r) for r in rows)
    counts = [None if any(x is None for x in r[:samples]) else int(sum(r[:samples])) for r in rows]
    return counts, samples, [p.get("answer") for p in chosen["problems"]]


def check_same_problems(start_answers: Sequence, answers: Sequence, dataset: str = "") -> None:
    """Raises ``ValueError`` naming the difference (the problem counts, or the first problem whose gold answer
    differs) unless ``answers`` are the starting evaluation's ``start_answers`` problem for problem, or their first
    ``len(answers)`` ones: ``--limit N`` takes a dataset's first N problems in the same order (every loader of
    ``rlrt.data`` cuts its rows after ordering them), so a subset of the start's problems is a prefix of them."""
    where = f" on {dataset}" if dataset else ""
    if len(answers) > len(start_answers):
        raise ValueError(f"the --strata-from evaluation{where} has {len(start_answers)} problems and this one "
                         f"{len(answers)}: evaluate the same dataset with --limit {len(start_answers)} or less (its "
                         "first problems; strata exist for the evaluated problems only).")
    for i, (a, b) in enumerate(zip(answers, start_answers)):
        if str(a) != str(b):
            subset = (f" (this evaluation's {len(answers)} problems must be the first {len(answers)} of its "
                      f"{len(start_answers)})" if len(answers) < len(start_answers) else "")
            raise ValueError(f"problem {i} of the --strata-from evaluation{where} has the answer {str(b)!r} and this "
                             f"one {str(a)!r}{subset}: evaluate the same dataset (same options and order) with the "
                             "same --limit or a smaller one.")


def strata_summary(problems: Sequence[dict], start_counts: Sequence[int | None], start_samples: int,
                   start_answers: Sequence, edges: Sequence[float] = DEFAULT_STRATA_EDGES) -> dict:
    """Per-stratum avg@k (with the problem count) and pass@k curve of one evaluation (``problems``: its rows with
    ``correct`` per sample and ``answer``), with strata from the starting model's counts (its first
    ``len(problems)`` when the evaluation is on a prefix of the start's problems, as with a smaller ``--limit``).
    Raises ``ValueError`` when the evaluation's problems are not the start's, or their first ones, in order."""
    check_same_problems(start_answers, [p.get("answer") for p in problems])
    strata = assign_strata(start_counts[:len(problems)], start_samples, edges)
    rows = [p["correct"] for p in problems]
    samples = min(len(r) for r in rows)
    counts = [None if any(x is None for x in r[:samples]) else int(sum(r[:samples])) for r in rows]
    return {"edges": list(check_edges(edges)), "start_samples": start_samples, "samples": samples,
            "strata": per_stratum(counts, samples, strata, stratum_labels(edges))}


def strata_markdown(results: Sequence[dict]) -> str:
    """Two tables over the results that carry ``strata``: avg@k per stratum (with problem counts), and the pass@k
    curve per stratum; one pair of tables per set of strata (edges and strata samples), since results kept from an
    earlier evaluation may have other edges. Scores in %; ``pass`` keys may be ints or, read back from JSON,
    strings."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("strata"):
            key = (tuple(r["strata"]["strata"]), r["strata"]["start_samples"], str(r["strata"]["edges"]))
            groups.setdefault(key, []).append(r)
    return "\n".join(_strata_tables(rows) for rows in groups.values())


def _strata_tables(rows: Sequence[dict]) -> str:
    labels = list(rows[0]["strata"]["strata"])
    lines = [f"Strata by the starting model's accuracy on {rows[0]['strata']['start_samples']} samples per problem "
             f"(edges {rows[0]['strata']['edges']}).", "",
             "| model | dataset | " + " | ".join(f"{label} avg (n)" for label in labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for r in rows:
        table = r["strata"]["strata"]
        cells = [f"{100 * table[label]['avg']:.1f} ({table[label]['problems']})" if table[label]["problems"]
                 else "— (0)" for label in labels]
        lines.append(f"| {r['model']} | {r['dataset']} | " + " | ".join(cells) + " |")
    ks = sorted({int(k) for r in rows for s in r["strata"]["strata"].values() for k in s["pass"]})
    lines += ["", "| model | dataset | stratum | " + " | ".join(f"pass@{k}" for k in ks) + " |",
              "|---|---|---|" + "---|" * len(ks)]
    for r in rows:
        for label, s in r["strata"]["strata"].items():
            if s["problems"]:
                curve = {int(k): v for k, v in s["pass"].items()}
                cells = [f"{100 * curve[k]:.1f}" if k in curve else "" for k in ks]
                lines.append(f"| {r['model']} | {r['dataset']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
