"""Training from scratch reads the test split once, at the end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nasbench_suite.spaces import NetShape, create_space

from nasbench_suite.cli.main import main
from nasbench_suite.data.datasets import TensorSplit
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch


def test_evaluate_trains_and_reads_the_test_split_once_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = create_space("relaxed", NetShape(4, 3, 1, 10, 8))
    genotype = space.derive(torch.rand(space.layout.shape))
    events: list[str] = []
    original = TensorSplit.batches

    def spy(self: TensorSplit, batch_size: int, gen, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("test" if gen is None else "train")
        return original(self, batch_size, gen, *args, **kwargs)

    monkeypatch.setattr(TensorSplit, "batches", spy)
    cfg = resolve_eval_config({"epochs": 2, "channels": 4, "batch_size": 128,
                               "out": str(tmp_path), "threads": 1})
    out = train_from_scratch(cfg, "tiny", genotype, progress=False, log=lambda _: None)
    assert events == ["train", "train", "test"]
    result = EvalFolder(out).result()
    assert 0.0 <= result.test_acc <= 1.0 and result.layers == 3
    assert result.macs == space.genotype_cost(genotype).macs
    assert result.started is not None and result.finished is not None
    assert result.started <= result.finished
    metrics = EvalFolder(out).metrics()
    assert len(metrics) == 2 and all("test_acc" not in m for m in metrics)


def test_evaluate_cli_rejects_bad_sources(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text('{"space": "relaxed"}')
    assert main(["evaluate", str(bad)]) == 2
    assert main(["evaluate", str(tmp_path)]) == 2
    assert main(["evaluate", str(bad), "--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("nasbench: error:") for line in err)


def test_an_interrupted_training_resumes_and_ends_as_an_uninterrupted_one(
        tmp_path: Path) -> None:
    space = create_space("relaxed", NetShape(4, 3, 1, 10, 8))
    genotype = space.derive(torch.rand(space.layout.shape,
                                       generator=torch.Generator().manual_seed(2)))
    cfg = resolve_eval_config({"epochs": 3, "channels": 4, "batch_size": 128,
                               "out": str(tmp_path), "threads": 1, "drop_path": 0.2})
    whole = EvalFolder(train_from_scratch(cfg, "g", genotype, progress=False,
                                          log=lambda _: None, run_dir=tmp_path / "whole"))

    class Stop(Exception):
        pass

    part = tmp_path / "part"
    original = EvalFolder.write_metrics

    def stop_after_two(self, rows):  # type: ignore[no-untyped-def]
        original(self, rows)
        if len(rows) == 2:
            raise Stop

    # interrupt after the second epoch's metrics, before its checkpoint: epoch 1 reruns
    EvalFolder.write_metrics = stop_after_two  # type: ignore[method-assign]
    try:
        with pytest.raises(Stop):
            train_from_scratch(cfg, "g", genotype, progress=False, log=lambda _: None,
                               run_dir=part)
    finally:
        EvalFolder.write_metrics = original  # type: ignore[method-assign]
    assert EvalFolder(part).has_checkpoint() and not EvalFolder(part).done()
    lines: list[str] = []
    train_from_scratch(cfg, "g", genotype, progress=False, log=lines.append, run_dir=part)
    assert any("resuming g after epoch 1" in line for line in lines)
    resumed = EvalFolder(part)
    assert resumed.result().test_acc == whole.result().test_acc
    assert resumed.metrics() == whole.metrics()
    assert not resumed.has_checkpoint()
