"""Where a student came from: git commit, library versions, time, and its command.

The command is rebuilt from the configuration (:func:`training.config_cli.option_argv`),
not copied from ``sys.argv``: it is the same whether the run came from the command line,
the Python API or the report, and it names every field's value.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from training.config_cli import option_argv
from training.distill.config import FLAGS, DistillConfig

LIBRARIES = ("numpy", "torch", "onnx", "onnxruntime", "gymnasium", "scipy")
_REPO = Path(__file__).resolve().parents[2]


def rebuild_command(cfg: DistillConfig, out: str | Path) -> list[str]:
    """``ran-distill distill`` argv reproducing ``cfg`` into ``out``: the teacher, the
    output, then every other field in field order, defaults included (a default may change
    between versions; the recorded command must not)."""
    argv = ["ran-distill", "distill"]
    if cfg.teacher:
        argv += option_argv(DistillConfig, "teacher", cfg.teacher, FLAGS)
    argv += ["--out", str(out)]
    for f in dataclasses.fields(DistillConfig):
        if f.name != "teacher":
            argv += option_argv(DistillConfig, f.name, getattr(cfg, f.name), FLAGS)
    return argv


def git_commit() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the source tree, or ``None`` outside a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def library_versions() -> dict[str, str | None]:
    """Python and the libraries a student's numbers depend on (``None``: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def created_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()
