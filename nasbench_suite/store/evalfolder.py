"""An evaluation folder: one training from scratch (``nasbench evaluate``, experiments'
``evals/``).

    eval_config.json   the resolved evaluation config, the label and the depth used
    genotype.json      the architecture trained
    metrics.jsonl      one row per epoch (train loss and accuracy; never the test split)
    checkpoint.pt      network, optimiser and random state after the last finished epoch
                       (checkpoint.prev.pt: the one before): an interrupted training resumes
    result.json        EvalResult, written last: test accuracy, read once after training
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from nasbench_suite.files import (
    load_checkpoint,
    read_json,
    read_jsonl,
    save_checkpoint,
    write_json,
    write_jsonl,
)
from nasbench_suite.store.records import EvalResult, record

_CHECKPOINT = "checkpoint.pt"
_PREVIOUS = "checkpoint.prev.pt"
_EVAL_CONFIG = "eval_config.json"
_GENOTYPE = "genotype.json"
_METRICS = "metrics.jsonl"
_RESULT = "result.json"


class EvalFolder:
    """One training from scratch: its config, genotype, per-epoch metrics and result."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def done(self) -> bool:
        return (self.path / _RESULT).exists()

    def result(self) -> EvalResult:
        path = self.path / _RESULT
        return record(EvalResult, read_json(path), str(path))

    def write_start(self, config: dict[str, Any], genotype: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / _EVAL_CONFIG, config)
        write_json(self.path / _GENOTYPE, genotype.to_dict())

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.path / _METRICS, rows)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / _METRICS)

    def write_result(self, result: EvalResult) -> None:
        write_json(self.path / _RESULT, asdict(result))

    def genotype(self) -> Any:
        """The genotype this folder trains (None before it is written)."""
        from nasbench_suite.spaces import Genotype

        path = self.path / _GENOTYPE
        return Genotype.from_dict(read_json(path)) if path.exists() else None

    def config(self) -> dict[str, Any]:
        return read_json(self.path / _EVAL_CONFIG)

    def has_checkpoint(self) -> bool:
        return (self.path / _CHECKPOINT).exists() or (self.path / _PREVIOUS).exists()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.path / _CHECKPOINT, self.path / _PREVIOUS, state)

    def load_checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.path / _CHECKPOINT, self.path / _PREVIOUS)[0]

    def drop_checkpoints(self) -> None:
        for name in (_CHECKPOINT, _PREVIOUS):
            (self.path / name).unlink(missing_ok=True)

