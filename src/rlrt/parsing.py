"""Command-line parsing shared by every command (``rlrt.cli``) and by ``rlrt compare``, which parses each run's
``rlrt train`` flags before any run starts: TRL's ``TrlParser`` (flags, or YAML keys with ``--config``) without
prefix abbreviations, every error as one ``ValueError`` line with the closest valid name."""

from __future__ import annotations

import re

from .text import did_you_mean


def parse_arguments(dataclass_types, argv: list[str], prog: str, description: str = "",
                    defaults: dict | None = None) -> tuple:
    """The parsed ``dataclass_types`` for ``argv``; raises ``ValueError`` (unknown flag or YAML key, with the closest
    name; a bad value) or ``FileNotFoundError`` (the ``--config`` file)."""
    from trl import TrlParser

    # No prefix abbreviations: `--num_sample` must not silently mean `--num_samples`.
    parser = TrlParser(dataclass_types, prog=prog, description=description, allow_abbrev=False)
    parser.error = lambda message: _usage_error(message, prog)  # one line, not the usage of every flag
    # TRL reads --config itself, before argparse, so argparse's own help would not list it.
    parser.epilog = ("--config FILE   a YAML file of option: value lines (the options above, without '--'); flags on "
                     "the command line override it.")
    parser.set_defaults(**(defaults or {}))
    usage = parser.format_usage().split(" ", 1)[1].rstrip("\n")  # argparse's own, less its "usage: "
    parser.usage = usage.replace("[-h]", "[-h] [--config FILE]", 1).replace("%", "%%")  # wherever argparse wraps
    config_file = _check_config_file(argv)
    *parsed, from_config, from_flags = parser.parse_args_and_config(
        argv, return_remaining_strings=True, separate_remaining_strings=True)
    known = [a.dest for a in parser._actions if a.dest != "help"]
    unknown = [f"unknown flag {s.split('=')[0]}{did_you_mean(s.split('=')[0].lstrip('-'), known, '--', quote=False)}"
               for s in from_flags if s.startswith("-")]
    unknown += [f"unknown key {s[2:]!r} in {config_file}{did_you_mean(s[2:], known)}"
                for s in from_config[::2]]
    if unknown or from_flags:
        stray = [s for s in from_flags if not s.startswith("-")]
        raise ValueError("; ".join(unknown) or f"unexpected arguments {stray} (every option is a --flag VALUE pair)")
    return tuple(parsed)


def _usage_error(message: str, prog: str = "rlrt"):
    """argparse's errors (a bad value for a typed or choice flag) as one ``ValueError`` line, with the closest valid
    choice where argparse lists them."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        message += did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
    raise ValueError(f"{message} (`{prog} --help` lists the options)")


def _check_config_file(argv: list[str]) -> str | None:
    """The ``--config`` file, checked to be a readable YAML mapping (one line naming it otherwise)."""
    if "--config" not in argv:
        return None
    index = argv.index("--config")
    if index + 1 >= len(argv):
        raise ValueError("--config needs a YAML file path.")
    path = argv[index + 1]
    import yaml

    try:
        with open(path) as f:
            content = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist.") from None
    except IsADirectoryError:
        raise ValueError(f"config file {path} is a folder; pass a YAML file.") from None
    except OSError as err:
        raise ValueError(f"cannot read config file {path} ({err.strerror}).") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ValueError(f"config file {path}{line} is not valid YAML ({getattr(err, 'problem', err)}).") from None
    if content is None:
        raise ValueError(f"config file {path} is empty: write one option: value per line (e.g. max_steps: 20).")
    if not isinstance(content, dict):
        raise ValueError(f"config file {path} must hold a YAML mapping of option: value; it holds "
                         f"{type(content).__name__}.")
    return path
