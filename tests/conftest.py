"""Shared fixtures: tiny configs that run a whole search on digits in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nasbench_suite.config import RunConfig, resolve_config

SHARED_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"

#: A whole search in a few seconds: 3 cells of 4 channels, 128 digits images.
TINY: dict[str, Any] = {
    "epochs": 1, "batch_size": 32, "channels": 4, "layers": 3,
    "max_train_images": 128, "eval_batch_size": 128, "bn_calib_batches": 2, "threads": 1,
}


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_config(tmp_path: Path):
    """``tiny_config(method=..., space=..., **overrides)`` -> a validated RunConfig."""

    def make(**overrides: Any) -> RunConfig:
        return resolve_config({**TINY, "out": str(tmp_path / "runs"), **overrides})

    return make


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (padding stripped)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.strip().startswith("|")]
