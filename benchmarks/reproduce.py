"""Reproduce the paper's comparison at small scale: grpo, rlrt, rlrt_all, teacher_up and rlsd on the embedded
SmolLM2-135M and the built-in addition task, three seeds, identical settings. A thin caller of `rlrt compare`
(rlrt/compare.py), which trains the runs, resumes them and writes the tables, intervals and plots.

    python benchmarks/reproduce.py                    # the full experiment (about 6 CPU-hours on 2 cores)
    python benchmarks/reproduce.py --quick            # minutes: 1 seed, 2 steps, the same pipeline
    python benchmarks/reproduce.py --report-only      # rebuild the report from what has finished

The same as `rlrt compare --arms grpo rlrt rlrt_all teacher_up rlsd --seeds 0 1 2 --output_dir repro_runs --train
max_steps=60 eval_every=15 eval_limit=32 eval_samples=4 eval_final_samples=4 save_steps=15`. Sizing (measured on
the 2-core machine, benchmarks/results/step_time.json): about 18 s per step with 16 rollouts of at most 48 tokens,
so 60 steps, 4 held-out evaluations of 32 problems x 4 samples, 15 runs ~ 6 h. The first experiment's table in
docs/reproduction.md was written by this script's earlier form (commit 3af0b5e), whose runs also evaluated the
starting model in every run and kept no per-problem records.
"""

from __future__ import annotations

import argparse
import sys

VARIANTS = ("grpo", "rlrt", "rlrt_all", "teacher_up", "rlsd")
SEEDS = (0, 1, 2)
# The first experiment's held-out sizing; the rest (60 steps, 16 rollouts, lr 5e-6) is compare's default.
TRAIN = dict(max_steps=60, eval_every=15, eval_limit=32, eval_samples=4, eval_final_samples=4, save_steps=15)


def compare_arguments(argv=None):
    """``CompareArguments`` of this experiment from the script's command line."""
    from rlrt.compare import CompareArguments

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="repro_runs")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 steps: checks the pipeline in minutes")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep checkpoint-* of finished runs")
    parser.add_argument("--skip-shift", action="store_true", help="no candidate-set shift in the report")
    args = parser.parse_args(argv)
    train = {"model": args.model, **({} if args.quick else TRAIN)}
    return CompareArguments(arms=args.variants, seeds=args.seeds, train=train, output_dir=args.out,
                            quick=args.quick, report_only=args.report_only, keep_checkpoints=args.keep_checkpoints,
                            skip_shift=args.skip_shift)


def main(argv=None) -> int:
    from rlrt.compare import run_compare

    return run_compare(compare_arguments(argv))


if __name__ == "__main__":
    sys.exit(main())
