"""``rlrt``: train, eval, inspect, report and compare from the command line.

    rlrt train                                   # embedded SmolLM2-135M, built-in task, RLRT, a few CPU minutes
    rlrt train --config run.yaml --shaping grpo  # any RLRTConfig / GRPOConfig field as --flag or YAML key
    rlrt eval --model runs/x/final --dataset addition:test --num_samples 8
    rlrt inspect --model runs/x/final --limit 2             # tokens coloured by D = log P_S - log P_T (HTML)
    rlrt report --runs runs/a runs/b --output_dir report    # plots, table, candidate-set shift
    rlrt interventions --limit 4 --continuations 4          # does the top-KL position decide the outcome?
    rlrt compare --arms grpo rlrt --seeds 0 1 2 --output_dir cmp  # arms x seeds: paired CIs, strata, pass@k
    accelerate launch -m rlrt train --config run.yaml
"""

from __future__ import annotations

import importlib
import os
import sys

# Every command lives in its own module, imported only when it runs. The module defines
#   COMMAND_ARGUMENTS   the argument dataclasses, parsed together (flags, or YAML keys with --config);
#   COMMAND_DEFAULTS    optional, parser defaults that differ from the dataclasses' own;
#   run_<name>(*parsed) the command itself: does the work, prints its result, returns the exit code.
# Adding a command is one line here.
COMMANDS: dict[str, str] = {
    "train": "rlrt.run",
    "eval": "rlrt.evaluation.evaluate",
    "inspect": "rlrt.analysis.inspect_run",
    "report": "rlrt.analysis.report",
    "interventions": "rlrt.analysis.intervention_run",
    "compare": "rlrt.compare",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(COMMANDS) + "   (rlrt COMMAND --help for its options)")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    name = argv[0]
    from .reliability import NonFiniteStepError, RewardFunctionError

    try:
        parsed, run = parse_command(name, argv[1:])
        return run(*parsed) or 0
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"rlrt {name}: error: {err}", file=sys.stderr)
        return 2
    except (RewardFunctionError, NonFiniteStepError) as err:  # the run stopped itself; its checkpoints are intact
        print(f"rlrt {name}: error: {err}", file=sys.stderr)
        return 1


def parse_command(name: str, argv: list[str]):
    """``(parsed argument dataclasses, run_<name>)`` of command ``name`` for the arguments ``argv``."""
    from trl import TrlParser

    module = importlib.import_module(COMMANDS[name])
    description = (module.__doc__ or "").strip().split("\n\n")[0]
    parser = TrlParser(module.COMMAND_ARGUMENTS, prog=f"rlrt {name}", description=description)
    parser.set_defaults(**getattr(module, "COMMAND_DEFAULTS", {}))
    parsed = parser.parse_args_and_config(argv)
    return parsed, getattr(module, f"run_{name}")


if __name__ == "__main__":
    raise SystemExit(main())
