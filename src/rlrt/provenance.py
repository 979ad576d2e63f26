"""Which code trained a run: rlrt's version and git commit, and the versions of the libraries it trains with.

``config.json`` of every run folder records ``code_record()`` under ``"code"``, so a reader can check that all the
runs of a comparison trained at one commit. Nothing here raises: a missing ``git``, an rlrt that is not a git
checkout (installed from a wheel) or a missing package is recorded as ``None``.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

RECORDED_PACKAGES = ("trl", "transformers", "torch")
PACKAGE_DIR = Path(__file__).resolve().parent


def package_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (``"2.13.0"``), ``None`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(source_dir: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    """``{"commit": <HEAD sha>, "uncommitted_changes": bool}`` of the git checkout whose tracked files include
    ``source_dir`` (a package folder), or both ``None`` when git is missing or fails, or when ``source_dir`` is not
    tracked by a checkout (an installed copy inside some other repository is not that repository's code).
    ``uncommitted_changes`` counts changed, staged or new (not ignored) files under ``source_dir`` only."""
    source_dir = Path(source_dir)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(source_dir), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if not git("ls-files", "--", "."):
            return {"commit": None, "uncommitted_changes": None}
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": commit, "uncommitted_changes": bool(changes)}


def code_record(source_dir: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    """What a run folder's ``config.json`` records under ``"code"``: ``rlrt`` (its version), ``commit`` and
    ``uncommitted_changes`` (``git_state`` of ``source_dir``, rlrt's own source folder by default) and ``packages``
    (the versions of ``RECORDED_PACKAGES``)."""
    return {"rlrt": package_version("rlrt"), **git_state(source_dir),
            "packages": {name: package_version(name) for name in RECORDED_PACKAGES}}
