"""Placeholder: replaced by the threads module (branch speed)."""

from __future__ import annotations

import os


def worker_environment(cpus: int) -> dict[str, str]:
    return {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
            "OMP_NUM_THREADS": str(cpus)}


def configure_process() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
