"""Calibrate the built-in ``chain`` task on the embedded SmolLM2-135M (issue 12, item 5).

Two passes, each writing its own section of benchmarks/results/chain_task_accuracy.json (the other is kept):

    # sweep: sampled accuracy of several difficulty settings on a subset of the training split
    OMP_NUM_THREADS=2 python benchmarks/chain_task_accuracy.py sweep --problems 32 --samples 4 \\
        --settings '{"steps": 1}' '{"steps": 2}' '{"steps": 3}'
    # heldout: the whole held-out split at 32 samples per problem at the default difficulty: avg@32, pass@k,
    # the starting model's per-problem accuracy in three strata (never solved, 0 < acc < 60 %, >= 60 %)
    OMP_NUM_THREADS=2 python benchmarks/chain_task_accuracy.py heldout --samples 32

Sampling: temperature 1.0, ``--max_new_tokens`` (default 64, the length the task is calibrated for). Grading is
``rlrt eval``'s path (``evaluate_model``: math-verify on the ``\\boxed{}`` answer with the default fallbacks), so
the numbers are what training and held-out evaluation see. Throughput (sequences/s, completion tokens/s, the
completion tokens re-counted by the tokenizer) is recorded for sizing experiments; it depends on what else runs
on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

STRATA = (("never", 0.0, 0.0), ("below_60", 0.0, 0.6), ("at_least_60", 0.6, 1.0))


def stratum(accuracy: float) -> str:
    """``never`` (0), ``below_60`` (0 < acc < 0.6) or ``at_least_60`` (acc >= 0.6)."""
    if accuracy == 0:
        return "never"
    return "below_60" if accuracy < 0.6 else "at_least_60"


def measure(model, tokenizer, dataset, samples: int, max_new_tokens: int, batch_size: int) -> dict:
    """avg@k/pass@k, per-problem accuracies, completion lengths and throughput of one sampling pass."""
    from rlrt.evaluation.evaluate import evaluate_model
    from rlrt.evaluation.sampling import SamplingConfig

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=1.0, batch_size=batch_size, seed=0)
    started = time.perf_counter()
    result = evaluate_model(model, tokenizer, dataset, samples, sampling, show_progress=False)
    seconds = time.perf_counter() - started
    lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"])
               for p in result["problems"] for c in p["completions"]]
    per_problem = [sum(s or 0.0 for s in p["correct"]) / len(p["correct"]) for p in result["problems"]]
    sequences = len(lengths)
    return {
        "problems": len(dataset),
        "samples": samples,
        "sampling": sampling.to_dict(),
        "summary": {k: v for k, v in result["summary"].items() if k != "seconds"},
        "per_problem_accuracy": per_problem,
        "completion_tokens_mean": round(sum(lengths) / sequences, 1),
        "truncated_fraction": round(sum(n >= max_new_tokens - 1 for n in lengths) / sequences, 3),
        "seconds": round(seconds, 1),
        "sequences_per_second": round(sequences / seconds, 2),
        "completion_tokens_per_second": round(sum(lengths) / seconds, 1),
        "example_completions": [p["completions"][0] for p in result["problems"][:3]],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("sweep", "heldout"))
    parser.add_argument("--settings", nargs="*", default=["{}"], help="sweep: JSON task options, one per setting.")
    parser.add_argument("--problems", type=int, default=32, help="sweep: training problems per setting.")
    parser.add_argument("--samples", type=int, default=None, help="Samples per problem (sweep 4, heldout 32).")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/chain_task_accuracy.json")
    args = parser.parse_args(argv)

    from rlrt.data import load_task
    from rlrt.models import load_model, load_tokenizer, resolve_model

    path = resolve_model(None)
    model, tokenizer = load_model(path), load_tokenizer(path)
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {}
    record["machine"] = f"CPU, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    if args.mode == "sweep":
        rows = []
        for text in args.settings:
            options = json.loads(text)
            dataset = load_task("chain", split="train", limit=args.problems, **options)
            row = measure(model, tokenizer, dataset, args.samples or 4, args.max_new_tokens, args.batch_size)
            row = {"options": options, "split": "train", **row}
            row.pop("per_problem_accuracy")
            print(json.dumps({k: row[k] for k in ("options", "summary", "completion_tokens_mean",
                                                  "truncated_fraction", "sequences_per_second")}), flush=True)
            rows.append(row)
        record["sweep"] = rows
    else:
        dataset = load_task("chain", split="test")
        row = measure(model, tokenizer, dataset, args.samples or 32, args.max_new_tokens, args.batch_size)
        counts = {name: 0 for name, _, _ in STRATA}
        for accuracy in row["per_problem_accuracy"]:
            counts[stratum(accuracy)] += 1
        record["heldout"] = {"options": "defaults", "split": "test", "strata": counts, **row}
        print(json.dumps({k: v for k, v in record["heldout"].items() if k != "per_problem_accuracy"}, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
