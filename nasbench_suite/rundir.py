"""A run on disk: the folder layout, atomic writes, checkpoints.

``results/runs/<method>-<space>-<dataset>-s<seed>-<time>/`` holds

* ``config.yaml``     the resolved config (the run can be repeated from it alone)
* ``metrics.jsonl``   one row per epoch
* ``events.jsonl``    prunes, recorded architectures, rounds, each with its epoch
* ``arch.jsonl``      the architecture weights (G x E x O) after every epoch
* ``genotype.json``   the final genotype; ``series.json`` the recorded series, if any
* ``summary.json``    written last: its presence means the run finished
* ``checkpoint.pt``   everything needed to resume after the last finished epoch

Every file is written to a temporary name and renamed, so an interrupted write never leaves
a half file behind, and every log is rewritten from the checkpoint's copy on resume.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from nasbench_suite.errors import UsageError

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
ARCH = "arch.jsonl"
GENOTYPE = "genotype.json"
SERIES = "series.json"


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def new_run_dir(out: str | Path, method: str, space: str, dataset: str, seed: int) -> Path:
    """A fresh folder; never an existing one, so no earlier result is overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out) / f"{method}-{space}-{dataset}-s{seed}-{stamp}"
    path, n = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    path.mkdir(parents=True)
    return path


def claim_run_dir(path: str | Path) -> Path:
    """An exact folder for a new run (sweep trials): created if missing, never a finished run."""
    run_dir = Path(path)
    if (run_dir / SUMMARY).exists():
        raise UsageError(f"{run_dir} already holds a finished run")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, run_dir / CHECKPOINT)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    try:
        return torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"cannot read the checkpoint of {run_dir}: {exc}") from None


def check_run_dir(path: str | Path) -> Path:
    """A folder written by ``nasbench run`` (has its config), else a UsageError."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UsageError(f"not a folder: {path}")
    if not (run_dir / CONFIG).is_file():
        raise UsageError(f"{path} is not a run folder (no {CONFIG})")
    return run_dir


def read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((run_dir / CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        raise UsageError(f"{run_dir}/{CONFIG} is unreadable") from None
    if not isinstance(data, dict):
        raise UsageError(f"{run_dir}/{CONFIG} is not a config mapping")
    return data
