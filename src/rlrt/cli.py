"""``rlrt``: train, eval, inspect, report, interventions and compare from the command line.

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
from pathlib import Path

from .io import ensure_output_dir
from .parsing import parse_arguments
from .text import did_you_mean

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
    if argv and argv[0] not in ("-h", "--help") and argv[0] not in COMMANDS:  # one line, not the whole help
        print(f"rlrt: error: unknown command {argv[0]!r}{did_you_mean(argv[0], COMMANDS)}; the commands are "
              f"{', '.join(COMMANDS)} (`rlrt --help`).", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(COMMANDS) + "   (rlrt COMMAND --help for its options)")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    name = argv[0]
    from .reliability import NonFiniteStepError, RewardFunctionError

    created, auto, code = [], [], 1
    try:
        parsed, run = parse_command(name, argv[1:])
        for arguments in parsed:
            output_dir = getattr(arguments, "output_dir", None)
            if output_dir == "auto":  # the command names it (a timestamped folder) and creates it
                auto.append(arguments)
            elif output_dir:  # fail now, not after an hour of work
                created += _missing_folders(output_dir)
                ensure_output_dir(output_dir)
        code = run(*parsed) or 0
        return code
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"rlrt {name}: error: {err}", file=sys.stderr)
        code = 2
        return code
    except (RewardFunctionError, NonFiniteStepError, OSError) as err:  # stopped while working; checkpoints intact
        print(f"rlrt {name}: error: {err}", file=sys.stderr)
        return code
    except KeyboardInterrupt:  # a command without its own graceful stop: one line, not a traceback
        print(f"\nrlrt {name}: interrupted (Ctrl-C); results not yet written are lost.", file=sys.stderr)
        code = 130
        return code
    finally:
        if code != 0:  # a failed or refused command leaves no empty folder that it created behind
            created += [a.output_dir for a in auto if a.output_dir != "auto"]
            for folder in created:
                if os.path.isdir(folder) and not os.listdir(folder):
                    os.rmdir(folder)


def _missing_folders(path: str) -> list[str]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for folder in [Path(path), *Path(path).parents]:
        if folder.exists():
            break
        missing.append(str(folder))
    return missing


def parse_command(name: str, argv: list[str]):
    """``(parsed argument dataclasses, run_<name>)`` of command ``name`` for the arguments ``argv``."""
    module = importlib.import_module(COMMANDS[name])
    description = (module.__doc__ or "").strip().split("\n\n")[0]
    parsed = parse_arguments(module.COMMAND_ARGUMENTS, argv, f"rlrt {name}", description,
                             getattr(module, "COMMAND_DEFAULTS", {}))
    return parsed, getattr(module, f"run_{name}")


if __name__ == "__main__":
    raise SystemExit(main())
