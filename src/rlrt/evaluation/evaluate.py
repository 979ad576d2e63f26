"""``rlrt eval``: sample k completions per problem, verify them, report avg@k and pass@k (JSON + Markdown)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..rewards.math import MathRewardConfig, MathVerifier, extract_final_answer
from .metrics import summarize
from .sampling import SamplingConfig, sample_completions


def score_samples(completions: Sequence[Sequence[str]], golds: Sequence[Any], verifier: MathVerifier,
                  reward_config: MathRewardConfig | None = None) -> list[list[float | None]]:
    """``[problem][sample]`` 1.0/0.0 (``None`` where the gold answer cannot be parsed)."""
    out = []
    for samples, gold in zip(completions, golds, strict=True):
        row = []
        for text in samples:
            verdict = verifier.verify(str(gold), extract_final_answer(text, reward_config))
            row.append(None if verdict is None else float(verdict))
        out.append(row)
    return out


def evaluate_model(model, tokenizer, dataset, num_samples: int, sampling: SamplingConfig,
                   verifier: MathVerifier | None = None, show_progress: bool = True, description: str = "eval") -> dict:
    """avg@k / pass@k of ``model`` on ``dataset`` (columns ``prompt`` and ``answer``), plus per-problem rows."""
    verifier = verifier or MathVerifier()
    total = len(dataset) * num_samples
    started = time.perf_counter()
    with tqdm(total=total, desc=description, unit="seq", disable=not show_progress) as bar:
        completions = sample_completions(model, tokenizer, dataset["prompt"], num_samples, sampling, progress=bar.update)
    scores = score_samples(completions, dataset["answer"], verifier)
    summary = summarize(scores)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    problems = [
        {"answer": a, "correct": s, "completions": c}
        for a, s, c in zip(dataset["answer"], scores, completions, strict=True)
    ]
    return {"summary": summary, "problems": problems}


def markdown_table(results: list[dict[str, Any]]) -> str:
    """One row per (model, dataset): every avg@/pass@ column present in any result."""
    metric_names = sorted({k for r in results for k in r["summary"] if k.startswith(("avg@", "pass@"))},
                          key=lambda k: (k.split("@")[0] != "avg", int(k.split("@")[1])))
    header = "| model | dataset | problems | " + " | ".join(metric_names) + " |"
    lines = [header, "|" + "---|" * (3 + len(metric_names))]
    for r in results:
        s = r["summary"]
        cells = [f"{100 * s[m]:.1f}" if m in s else "" for m in metric_names]
        lines.append(f"| {r['model']} | {r['dataset']} | {s.get('problems', 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(results: list[dict[str, Any]], sampling: SamplingConfig, output_dir: str | Path) -> tuple[Path, Path]:
    """``results.json`` (everything, per-problem samples included) and ``results.md`` (the table)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output_dir / "results.json", output_dir / "results.md"
    payload = {"sampling": sampling.to_dict(), "results": results}
    json_path.write_text(json.dumps(payload, indent=2))
    settings = ", ".join(f"{k}={v}" for k, v in sampling.to_dict().items())
    md_path.write_text(f"# Evaluation\n\nSampling: {settings}\n\nScores in %.\n\n" + markdown_table(results))
    return json_path, md_path
