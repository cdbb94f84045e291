"""`nasbench show`'s words for why a search stopped, read from the method's own records."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nasbench_suite.spaces import DARTS_V2

from nasbench_suite.report.describe import genotype_lines, stop_line


def _summary(stop: str, epochs: int, macs: float = 2e6, **final: Any) -> SimpleNamespace:
    return SimpleNamespace(stop_reason=stop, epochs_run=epochs, final=final,
                           derived=SimpleNamespace(macs=macs))


def test_a_full_budget_says_so() -> None:
    assert stop_line(_summary("epochs", 15), 15, []) == "epochs run 15 / 15 (the epoch budget)"


def test_gold_names_its_floor_from_its_record_or_its_metrics() -> None:
    floor = [{"kind": "prune"}, {"kind": "record", "reason": "floor"}]
    line = stop_line(_summary("method", 15, macs=1.1e6, flops_floor=1.2e6), 60, floor)
    assert line == ("epochs run 15 / 60: stopped early, GOLD-NAS reached its FLOPs floor "
                    "(1.1 M multiply-adds, below the floor of 1.2 M)")
    # record_final off: no record event; the floor in the final metrics decides
    assert "reached its FLOPs floor" in stop_line(
        _summary("method", 15, macs=1.1e6, flops_floor=1.2e6), 60, [])
    minimal = stop_line(_summary("method", 9, macs=3e6, flops_floor=1.2e6), 60, [])
    assert minimal.endswith("could prune nothing more (every node down to its last input)")


def test_darts_es_names_the_epoch_it_returned() -> None:
    line = stop_line(_summary("method", 21, es_stopped_at=20.0, es_returned_epoch=12.0), 50, [])
    assert line == ("epochs run 21 / 50: stopped early, DARTS-ES's eigenvalue rule fired at "
                    "epoch 20 and returned the architecture of epoch 12")


def test_genotype_lines_list_each_node_with_its_inputs() -> None:
    lines = genotype_lines(DARTS_V2)
    assert lines[0] == "normal: output = concat(2, 3, 4, 5)"
    assert lines[1] == "  2 <- sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1})"
    assert lines[4] == "  5 <- skip_connect(c_{k-2}), dil_conv_3x3(2)"
    assert lines[5] == "reduce: output = concat(2, 3, 4, 5)"
    assert len(lines) == 10
