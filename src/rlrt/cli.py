"""``rlrt``: train, eval (and inspect, report) from the command line.

    rlrt train                                   # embedded SmolLM2-135M, built-in task, RLRT, a few CPU minutes
    rlrt train --config run.yaml --shaping grpo  # any RLRTConfig / GRPOConfig field as --flag or YAML key
    rlrt eval --model runs/x/final --dataset addition:test --num_samples 8
    rlrt inspect --model runs/x/final --limit 2             # tokens coloured by D = log P_S - log P_T (HTML)
    rlrt report --runs runs/a runs/b --output_dir report    # plots, table, candidate-set shift
    accelerate launch -m rlrt train --config run.yaml
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

# Defaults of `rlrt train` that differ from RLRTConfig's: a short run that fits 2 CPU cores in a few minutes.
CPU_RUN_DEFAULTS = dict(
    per_device_train_batch_size=16,
    num_generations=8,
    max_completion_length=48,
    max_steps=8,
    learning_rate=1e-5,
    lr_scheduler_type="constant",
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    gradient_checkpointing=False,
    temperature=1.0,
    output_dir="auto",
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_command, "eval": eval_command, "inspect": inspect_command, "report": report_command}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(commands) + "   (rlrt COMMAND --help for its options)")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return commands[argv[0]](argv[1:]) or 0
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"rlrt {argv[0]}: error: {err}", file=sys.stderr)
        return 2


def train_command(argv: list[str]) -> int:
    from trl import TrlParser

    from .config import RLRTConfig
    from .run import RunAlreadyFinished, TrainArguments, TrainingInterrupted, run_training

    parser = TrlParser((TrainArguments, RLRTConfig), prog="rlrt train",
                       description="Train with RLRT or a baseline (--shaping). Every GRPOConfig field is a flag.")
    parser.set_defaults(**CPU_RUN_DEFAULTS)
    train_args, config = parser.parse_args_and_config(argv)
    if config.output_dir == "auto":
        config.output_dir = os.path.join("runs", f"{config.shaping}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        run_dir = run_training(train_args, config)
    except RunAlreadyFinished as done:
        print(f"rlrt train: {done}")
        return 0
    except TrainingInterrupted as stop:
        print(f"\nrlrt train: {stop}", file=sys.stderr)
        return 130 if stop.signal_name == "SIGINT" else 143
    print(f"\nrun folder: {run_dir}  (summary.md, metrics.csv, heldout.jsonl, final/)")
    return 0


@dataclass
class EvalArguments:
    model: list[str] = field(default_factory=lambda: ["smollm2-135m"], metadata={"help": "One or more checkpoints."})
    dataset: list[str] = field(default_factory=lambda: ["addition:test"], metadata={"help": "One or more datasets."})
    limit: int | None = field(default=None, metadata={"help": "At most this many problems per dataset."})
    num_samples: int = field(default=8, metadata={"help": "Samples per problem (k of avg@k, n of pass@k)."})
    max_new_tokens: int = field(default=256)
    temperature: float = field(default=1.0)
    top_p: float = field(default=1.0)
    top_k: int = field(default=0)
    batch_size: int = field(default=64, metadata={"help": "Sequences generated together."})
    seed: int = field(default=0)
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast; default: where supported."})
    output_dir: str = field(default="eval_results", metadata={"help": "Where results.json and results.md go."})
    trust_remote_code: bool = field(default=False)


def eval_command(argv: list[str]) -> int:
    from trl import TrlParser

    from .data.registry import load_task
    from .evaluation.evaluate import evaluate_model, markdown_table, write_results
    from .evaluation.sampling import SamplingConfig
    from .models import load_model, load_tokenizer, resolve_model
    from .rewards.math import MathVerifier
    from .run import split_spec

    (args,) = TrlParser((EvalArguments,), prog="rlrt eval").parse_args_and_config(argv)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, batch_size=args.batch_size, seed=args.seed, bf16=args.bf16)
    datasets = {}
    for spec in args.dataset:
        name, split = split_spec(spec)
        datasets[spec] = load_task(name, split=split, limit=args.limit)
    verifier = MathVerifier()
    results = []
    for model_name in args.model:
        path = resolve_model(model_name)
        model, tokenizer = load_model(path, args.trust_remote_code), load_tokenizer(path, args.trust_remote_code)
        for spec, dataset in datasets.items():
            result = evaluate_model(model, tokenizer, dataset, args.num_samples, sampling, verifier,
                                    description=f"{model_name} on {spec}")
            results.append({"model": model_name, "dataset": spec, **result})
    json_path, md_path = write_results(results, sampling, args.output_dir)
    print(markdown_table(results))
    print(f"results: {json_path}  {md_path}")
    return 0


def inspect_command(argv: list[str]) -> int:
    from trl import TrlParser

    from .analysis.inspect_run import InspectArguments, run_inspect

    (args,) = TrlParser((InspectArguments,), prog="rlrt inspect").parse_args_and_config(argv)
    json_path, html_path = run_inspect(args)
    print(f"inspector: {html_path}  (data: {json_path})")
    return 0


def report_command(argv: list[str]) -> int:
    from trl import TrlParser

    from .analysis.report import ReportArguments, run_report

    (args,) = TrlParser((ReportArguments,), prog="rlrt report").parse_args_and_config(argv)
    paths = run_report(args)
    print(paths["report"].read_text())
    print(f"report: {paths['report']}  plots: {paths['overview'].parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
