"""Calibrate the built-in ``chain`` task on the embedded SmolLM2-135M (issue 12, item 5).

Two passes, each writing its own section of benchmarks/results/chain_task_accuracy.json (the other is kept):

    # sweep: sampled accuracy of difficulty settings on the first training problems
    OMP_NUM_THREADS=2 python benchmarks/chain_task_accuracy.py sweep --problems 16 --samples 4 \\
        --settings '{"steps": 2, "max_operand": 5}' '{"steps": 3, "max_operand": 4}'
    # heldout: the whole held-out split, 32 samples per problem, at the default difficulty: avg@32, pass@k, the
    # starting model's per-problem accuracy in the strata never / <60% / >=60% (rlrt.evaluation.strata)
    OMP_NUM_THREADS=2 python benchmarks/chain_task_accuracy.py heldout --samples 32
    # or, instead of sampling again: the same numbers from `rlrt compare`'s evaluation of the starting model
    python benchmarks/chain_task_accuracy.py from_start --start <compare output_dir>/start/results.json

``heldout`` samples ``--chunk`` problems at a time (sampling seed = the chunk's first problem index) and appends
each chunk to ``<out>.partial.jsonl``, so an interrupted pass resumes where it stopped; ``--max_problems`` stops
early (a partial pass is written as such); ``--workers 2 --worker 0|1`` splits the chunks between two
processes (throughput is then per process). The finished section holds every problem's 1/0 per sample in
``rlrt eval``'s layout, so ``rlrt eval --strata-from benchmarks/results/chain_task_accuracy.json`` can use it.

Sampling: temperature 1.0, ``--max_new_tokens`` (default 48, the default run's ``max_completion_length``).
Grading is ``rlrt eval``'s path (``evaluate_model``), so the numbers are what training and held-out evaluation
see. Throughput (sequences/s, completion tokens/s, tokens re-counted by the tokenizer) is recorded for sizing
experiments; it depends on what else runs on the machine (``load_average`` is recorded with it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path


def measure(model, tokenizer, dataset, samples: int, max_new_tokens: int, batch_size: int, seed: int = 0) -> dict:
    """One sampling pass: summary, per-problem 1/0 rows, completion lengths (tokens) and seconds."""
    from rlrt.evaluation.evaluate import evaluate_model
    from rlrt.evaluation.sampling import SamplingConfig

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=1.0, batch_size=batch_size, seed=seed)
    started = time.perf_counter()
    result = evaluate_model(model, tokenizer, dataset, samples, sampling, show_progress=False)
    seconds = time.perf_counter() - started
    lengths = [[len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in p["completions"]]
               for p in result["problems"]]
    return {"sampling": sampling.to_dict(), "summary": result["summary"], "problems": result["problems"],
            "lengths": lengths, "seconds": seconds}


def throughput(lengths: list[list[int]], seconds: float, max_new_tokens: int) -> dict:
    flat = [n for row in lengths for n in row]
    return {
        "completion_tokens_mean": round(sum(flat) / len(flat), 1),
        "truncated_fraction": round(sum(n >= max_new_tokens - 1 for n in flat) / len(flat), 3),
        "seconds": round(seconds, 1),
        "sequences_per_second": round(len(flat) / seconds, 3),
        "completion_tokens_per_second": round(sum(flat) / seconds, 1),
        "load_average": os.getloadavg()[0],
    }


def sweep(model, tokenizer, args) -> list[dict]:
    from rlrt.data import load_task

    rows = []
    for text in args.settings:
        options = json.loads(text)
        dataset = load_task("chain", split="train", limit=args.problems, **options)
        run = measure(model, tokenizer, dataset, args.samples or 4, args.max_new_tokens, args.batch_size)
        summary = {k: v for k, v in run["summary"].items() if k != "seconds"}
        row = {"options": options, "split": "train", "problems": len(dataset), "summary": summary,
               **throughput(run["lengths"], run["seconds"], args.max_new_tokens),
               "example_completions": [p["completions"][0] for p in run["problems"][:3]]}
        print(json.dumps({k: v for k, v in row.items() if k != "example_completions"}), flush=True)
        rows.append(row)
    return rows


def heldout(model, tokenizer, args) -> tuple[dict, list[dict]]:
    from rlrt.data import ChainOptions, load_task
    from rlrt.evaluation.metrics import summarize
    from rlrt.evaluation.strata import assign_strata, stratum_labels

    samples = args.samples or 32
    dataset = load_task("chain", split="test")
    partial = Path(f"{args.out}.partial.jsonl")
    rows = [json.loads(line) for line in partial.read_text().splitlines()] if partial.exists() else []
    done = {r["index"]: r for r in rows if r["samples"] == samples and r["max_new_tokens"] == args.max_new_tokens}
    end = min(len(dataset), args.max_problems or len(dataset))
    starts = range(0, end, args.chunk)
    for number, start in enumerate(starts):
        indices = [i for i in range(start, min(start + args.chunk, end)) if i not in done]
        if number % args.workers != args.worker or not indices:
            continue
        run = measure(model, tokenizer, dataset.select(indices), samples, args.max_new_tokens, args.batch_size,
                      seed=start)
        lines = []
        for index, problem, lengths in zip(indices, run["problems"], run["lengths"]):
            done[index] = {"index": index, "answer": problem["answer"], "correct": problem["correct"],
                           "lengths": lengths, "seconds": run["seconds"] / len(indices), "samples": samples,
                           "max_new_tokens": args.max_new_tokens}
            lines.append(json.dumps(done[index]) + "\n")
        with partial.open("a") as f:
            f.write("".join(lines))
        print(f"{len(done)}/{end} problems, {run['seconds']:.0f} s for this chunk", flush=True)
    for line in partial.read_text().splitlines():  # what other workers finished meanwhile
        row = json.loads(line)
        if row["samples"] == samples and row["max_new_tokens"] == args.max_new_tokens:
            done.setdefault(row["index"], row)
    done = [done[i] for i in sorted(done) if i < end]
    scores = [d["correct"] for d in done]
    counts = [None if None in row else int(sum(row)) for row in scores]
    strata = assign_strata(counts, samples)
    summary = summarize(scores)
    section = {
        "options": asdict(ChainOptions()), "split": "test", "problems": len(done),
        "complete": len(done) == len(dataset),
        "samples": samples, "max_new_tokens": args.max_new_tokens,
        "summary": summary,
        "strata": {label: strata.count(label) for label in stratum_labels()},
        **throughput([d["lengths"] for d in done], sum(d["seconds"] for d in done), args.max_new_tokens),
        "per_problem_correct": counts,
    }
    return section, done


def from_start(path: Path, strata_samples: int = 32, model: str | None = None) -> dict:
    """The held-out section from ``rlrt compare``'s evaluation of the starting model on ``chain:test``
    (``start/results.json``, or its ``results.partial.jsonl`` while it runs): the same measurement (temperature
    1.0, the runs' completion length), so it is not sampled twice; strata from its first ``strata_samples``
    (read from ``results.json``; ``strata_samples`` for a partial file). ``model`` chooses the starting model
    when the file holds several (``--model``)."""
    from rlrt.data.chain import HELD_OUT_SIZE
    from rlrt.evaluation.metrics import summarize
    from rlrt.evaluation.strata import assign_strata, start_counts, start_result, stratum_labels
    from rlrt.io import read_jsonl

    if path.suffix == ".jsonl":
        problems = [p for record in sorted(read_jsonl(path), key=lambda r: r["first"]) for p in record["problems"]]
        payload = {"strata_samples": strata_samples, "results": [{"dataset": "chain:test", "problems": problems}]}
    else:
        payload = json.loads(path.read_text())
    partial = path.suffix == ".jsonl"  # records no model: the one compare evaluated
    chosen = start_result(payload, "chain:test", None if partial else model, source=f"--start {path}",
                          model_flag="--model")
    counts, samples, _ = start_counts(chosen, payload.get("strata_samples"))
    rows = chosen["problems"]
    strata = assign_strata(counts, samples)
    return {
        "source": str(path), "split": "test", "problems": len(rows), "complete": len(rows) == HELD_OUT_SIZE,
        "samples": samples, "samples_in_source": min(len(p["correct"]) for p in rows),
        "summary": summarize([p["correct"][:samples] for p in rows]),
        "summary_all_samples": summarize([p["correct"] for p in rows]),
        "strata": {label: strata.count(label) for label in stratum_labels()},
        "per_problem_correct": counts,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("sweep", "heldout", "from_start"))
    parser.add_argument("--start", help="from_start: compare's start/results.json (or results.partial.jsonl).")
    parser.add_argument("--settings", nargs="*", default=["{}"], help="sweep: JSON task options, one per setting.")
    parser.add_argument("--problems", type=int, default=16, help="sweep: training problems per setting.")
    parser.add_argument("--samples", type=int, default=None, help="Samples per problem (sweep 4, heldout 32).")
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=8, help="heldout: problems sampled (and saved) together.")
    parser.add_argument("--workers", type=int, default=1, help="heldout: processes sharing the pass (chunks "
                        "round-robin, one --out); the last to finish writes the complete section.")
    parser.add_argument("--worker", type=int, default=0, help="heldout: this process's number, 0 to workers - 1.")
    parser.add_argument("--max_problems", type=int, default=None, help="heldout: stop after this many problems.")
    parser.add_argument("--model", default=None, help="Checkpoint (default: the embedded model); from_start: the "
                        "starting model's name in a --start file that holds several.")
    parser.add_argument("--out", default="benchmarks/results/chain_task_accuracy.json")
    args = parser.parse_args(argv)

    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {}
    if args.mode == "from_start":
        record["heldout"] = from_start(Path(args.start), args.samples or 32, args.model)
        record["heldout_note"] = (
            f"from {args.start}: {record['heldout']['problems']} held-out problems"
            + ("" if record["heldout"]["complete"] else " (partial: rerun from_start once the evaluation finishes)"))
        print(json.dumps({k: v for k, v in record["heldout"].items() if k != "per_problem_correct"}, indent=2))
        out.write_text(json.dumps(record, indent=2))
        return 0

    from rlrt.models import DEFAULT_MODEL, load_model, load_tokenizer, resolve_model

    args.model = args.model or DEFAULT_MODEL
    path = resolve_model(args.model)
    model, tokenizer = load_model(path), load_tokenizer(path)
    record["model"] = args.model
    record["machine"] = f"CPU ({os.cpu_count()} cores, shared), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    if args.mode == "sweep":
        record["sweep"] = sweep(model, tokenizer, args)
    else:
        section, rows = heldout(model, tokenizer, args)
        print(json.dumps({k: v for k, v in section.items() if k != "per_problem_correct"}, indent=2))
        record["heldout"] = section
        # rlrt eval's layout, for `rlrt eval --strata-from` (1/0 per sample, no texts)
        record["strata_samples"] = section["samples"]
        record["results"] = [{"model": args.model, "dataset": "chain:test", "summary": section["summary"],
                              "problems": [{"answer": r["answer"], "correct": r["correct"]} for r in rows]}]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
