"""Reproduce the paper's comparison at small scale: grpo, rlrt, rlrt_all, teacher_up and rlsd on the embedded
SmolLM2-135M and the built-in addition task, several seeds, identical settings, held-out avg@k/pass@k at
regular intervals, then `rlrt report` (plots, table, candidate-set shift).

    python benchmarks/reproduce.py                    # the full experiment (about 6 CPU-hours on 2 cores)
    python benchmarks/reproduce.py --quick            # minutes: 1 seed, 2 steps, the same pipeline
    python benchmarks/reproduce.py --report-only      # rebuild the report from what has finished

Every run is a `rlrt train` subprocess with its own folder under --out; rerunning the command skips finished
runs and resumes unfinished ones from their last complete checkpoint, so it can be stopped at any time.
Sizing (measured on the 2-core machine, benchmarks/results/step_time.json): about 18 s per step with 16
rollouts of at most 48 tokens, so 60 steps, 5 held-out evaluations of 32 problems x 4 samples, 15 runs ~ 6 h.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("grpo", "rlrt", "rlrt_all", "teacher_up", "rlsd")

FULL = dict(seeds=[0, 1, 2], steps=60, eval_every=15, eval_limit=32, eval_samples=4, batch=16, generations=8,
            completion=48, learning_rate=5e-6)
QUICK = dict(seeds=[0], steps=2, eval_every=2, eval_limit=4, eval_samples=2, batch=8, generations=4,
             completion=24, learning_rate=5e-6)


def run_command(out: Path, variant: str, seed: int, s: dict, model: str) -> list[str]:
    run_dir = out / f"{variant}-s{seed}"
    return [
        sys.executable, "-m", "rlrt", "train", "--model", model, "--dataset", "addition", "--eval_dataset",
        "addition:test", "--shaping", variant, "--seed", str(seed), "--max_steps", str(s["steps"]),
        "--eval_every", str(s["eval_every"]), "--eval_limit", str(s["eval_limit"]), "--eval_samples",
        str(s["eval_samples"]), "--per_device_train_batch_size", str(s["batch"]), "--num_generations",
        str(s["generations"]), "--max_completion_length", str(s["completion"]), "--learning_rate",
        str(s["learning_rate"]), "--lr_scheduler_type", "constant", "--save_strategy", "steps", "--save_steps",
        str(s["eval_every"]), "--save_total_limit", "1", "--output_dir", str(run_dir), "--disable_tqdm", "true",
    ]


def run_order(variants: list[str], seeds: list[int], first: list[str]) -> list[tuple[str, int]]:
    """Seed by seed (every variant of seed 0, then of seed 1, ...); the ``first`` variants' seeds all come first."""
    leading = [(v, s) for s in seeds for v in variants if v in first]
    return leading + [(v, s) for s in seeds for v in variants if v not in first]


def finished(run_dir: Path, steps: int) -> bool:
    summary = run_dir / "summary.json"
    return summary.is_file() and json.loads(summary.read_text()).get("steps", 0) >= steps


def set_aside_unresumable(run_dir: Path, out: Path) -> Path | None:
    """Move a run stopped before its first complete checkpoint to ``out/abandoned/`` (kept, not deleted), so the
    run can start over: `rlrt train` refuses to write over logs it cannot resume. Returns the new place."""
    from rlrt.reliability import last_complete_checkpoint

    if not (run_dir / "metrics.jsonl").is_file() or last_complete_checkpoint(run_dir) is not None:
        return None
    target = out / "abandoned" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    run_dir.rename(target)
    return target


def results_table(out: Path, runs: list[Path]) -> str:
    """Held-out avg@k per variant (mean ± std over seeds) at the start, at the end and averaged over the
    evaluations after the start (less noisy than one point), pass@k at the end, the per-seed end values with
    their paired difference to grpo of the same seed (same data order and sampling seed), and the paired
    difference of the after-start mean (mean ± std over seeds)."""
    from rlrt.analysis.report import heldout_key, mean_std, pass_key
    from rlrt.io import read_jsonl

    def seed_of(run: Path) -> int:
        return int(run.name.rsplit("-s", 1)[1])

    def variant_of(run: Path) -> str:
        return run.name.rsplit("-s", 1)[0]

    summaries, avg_key, top_pass = {}, None, None
    for run in runs:
        records = read_jsonl(run / "heldout.jsonl")
        avg_key, top_pass = heldout_key({"heldout": records}), pass_key({"heldout": records})
        later = [r[avg_key] for r in records[1:]] or [records[0][avg_key]]
        summaries[run] = {"start": records[0][avg_key], "end": records[-1][avg_key], "curve": statistics.fmean(later),
                          "pass": records[-1][top_pass]}
    grpo = {seed_of(r): v for r, v in summaries.items() if variant_of(r) == "grpo"}
    rows = ["| variant | seeds | start | end | mean after start | pass@k end | end per seed | end − grpo per seed "
            "| mean after start − grpo |",
            "|---|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        mine = sorted((r for r in runs if variant_of(r) == variant), key=seed_of)
        if not mine:
            continue
        column = {k: [summaries[r][k] for r in mine] for k in ("start", "end", "curve", "pass")}
        per_seed = ", ".join(f"s{seed_of(r)} {100 * summaries[r]['end']:.1f}" for r in mine)
        paired = [r for r in mine if seed_of(r) in grpo] if variant != "grpo" else []
        deltas = ", ".join(f"s{seed_of(r)} {100 * (summaries[r]['end'] - grpo[seed_of(r)]['end']):+.1f}" for r in paired)
        curve_delta = mean_std([summaries[r]["curve"] - grpo[seed_of(r)]["curve"] for r in paired], signed=True)
        rows.append(f"| {variant} | {len(mine)} | {mean_std(column['start'])} | {mean_std(column['end'])} | "
                    f"{mean_std(column['curve'])} | {mean_std(column['pass'])} | {per_seed} | {deltas or '—'} "
                    f"| {curve_delta or '—'} |")
    header = (f"Held-out {avg_key} and {top_pass} in % (mean ± std over seeds); 'mean after start' averages "
              f"{avg_key} over every evaluation after step 0.\n\n") if avg_key else ""
    return header + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="repro_runs")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 steps: checks the pipeline in minutes")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--first", nargs="+", default=[], choices=VARIANTS,
                        help="train all seeds of these variants before the others (default: seed by seed)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep checkpoint-* of finished runs")
    parser.add_argument("--skip-shift", action="store_true", help="no candidate-set shift in the report")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.seeds is not None:
        settings["seeds"] = args.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps({**settings, "variants": args.variants, "model": args.model}, indent=2))

    plan = run_order(args.variants, settings["seeds"], args.first)
    if not args.report_only:
        for index, (variant, seed) in enumerate(plan, 1):
            run_dir = out / f"{variant}-s{seed}"
            if finished(run_dir, settings["steps"]):
                print(f"[{index}/{len(plan)}] {run_dir.name}: finished, skipped", flush=True)
                continue
            moved = set_aside_unresumable(run_dir, out)
            if moved is not None:
                print(f"[{index}/{len(plan)}] {run_dir.name}: stopped before its first checkpoint; its logs are "
                      f"kept in {moved}, starting over", flush=True)
            print(f"[{index}/{len(plan)}] {run_dir.name}: training ({settings['steps']} steps)", flush=True)
            started = time.time()
            env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
            result = subprocess.run(run_command(out, variant, seed, settings, args.model), env=env)
            if result.returncode != 0:
                print(f"{run_dir.name} stopped with exit code {result.returncode}; rerun to resume", file=sys.stderr)
                return result.returncode
            if not args.keep_checkpoints:
                for checkpoint in run_dir.glob("checkpoint-*"):
                    shutil.rmtree(checkpoint, ignore_errors=True)
            print(f"[{index}/{len(plan)}] {run_dir.name}: done in {time.time() - started:.0f} s", flush=True)

    done = [out / f"{v}-s{s}" for v, s in plan if finished(out / f"{v}-s{s}", settings["steps"])]
    if not done:
        print("no finished runs yet", file=sys.stderr)
        return 1
    from rlrt.analysis.report import ReportArguments, write_report

    paths = write_report(ReportArguments(runs=[str(r) for r in done], output_dir=str(out / "report"),
                                       skip_shift=args.skip_shift, shift_contexts=64 if not args.quick else 4,
                                       shift_max_new_tokens=settings["completion"]))
    table = results_table(out, done)
    (out / "results.md").write_text(f"# Reproduction results ({len(done)}/{len(plan)} runs finished)\n\n{table}\n"
                                    + paths["report"].read_text().split("\n", 2)[-1])
    print(table)
    print(f"results: {out / 'results.md'}  report: {paths['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
