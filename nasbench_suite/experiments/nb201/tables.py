"""The nb201 report's tables, read from the experiment folder alone.

Every accuracy here is the table's (NAS-Bench-201, 200-epoch training, percent): a search's
own accuracies are about its supernet and say nothing of the cell it derives. Per epoch the
cell is the one arch.jsonl records (store/runfolder.py ``arch()``); a genotype that is not one
cell of the benchmark (a method that keeps several ops on one edge, like GOLD-NAS) is scored
by the space's own rule (spaces/nb201.py ``derive``): per edge the strongest of the kept ops,
from the weights and the active mask recorded beside it.

* ``runs``: one row per finished search: its final cell, that cell's four table columns and
  percentile, its skip and parameter-free shares, the supernet's training accuracy at the
  end and at its best, the first epoch that passed the target, the search time, and the
  rank correlation if the run folder holds one.
* ``epochs``: one row per search and arch.jsonl record (epoch -1: the initialisation, shown
  as 0 epochs done): the cell, its CIFAR-10 validation accuracy, its shares and the
  supernet's training accuracy of that epoch.
* ``reference``: the published rows the methods are read against: the all-skip cell, the
  table's best and median per column.
* ``random``: random search's expected best CIFAR-10 validation accuracy of k cells.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import manifest_of
from nasbench_suite.experiments.nb201.config import METHODS, RANDOM_K_MAX, Nb201Config
from nasbench_suite.groundtruth import nb201 as table
from nasbench_suite.groundtruth import scored_cell
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.nb201_arch import NB201_EDGES, format_arch
from nasbench_suite.store.runfolder import FINISHED, RunFolder

#: the table's columns the report shows: (Truth field, header)
GT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cifar10_valid", "CIFAR-10 valid"), ("cifar10_test", "CIFAR-10 test"),
    ("cifar100_test", "CIFAR-100 test"), ("imagenet16_test", "ImageNet16-120 test"))
#: the published cell DARTS collapses to in the benchmark's paper
ALL_SKIP = format_arch(("skip_connect",) * len(NB201_EDGES))
#: the arch column of an epoch whose cell is undefined (a tie: :func:`scored_cell`)
TIED = "tie: no strongest kept op"
_RUNS = ["arm", "method", "seed", "trial", "arch", *[c for c, _ in GT_COLUMNS], "percentile",
         "skip_share", "param_free_share", "train_acc_end", "train_acc_best",
         "target_epoch", "epochs_run", "search_time_s", "rankcorr", "tau_last", "rho_last",
         "top_truth_last", "epochs", "channels", "layers", "image_size"]
_EPOCHS = ["arm", "method", "seed", "epoch", "arch", "cifar10_valid", "skip_share",
           "param_free_share", "train_acc"]


def arm_name(method: str, order: int = 1) -> str:
    """The label of a method in every table and figure."""
    if method == "darts":
        return f"DARTS ({'2nd' if order == 2 else '1st'} order)"
    return {"gold": "GOLD-NAS", "edas": "EDAS", "padnas": "PAD-NAS", "nse": "NSE"}[method]


def _rankcorr(run: RunFolder) -> str:
    """Kendall's tau and Spearman's rho of the supernet against the table per stage, as
    `nasbench rankcorr` recorded them in the run folder (truthcorr.json), or 'not
    measured'."""
    if not run.has_truthcorr():
        return "not measured"
    result = run.truthcorr()

    def num(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.2f}"

    stages = [f"{stage} tau {num(result.tau[stage])}, rho {num(result.rho[stage])}"
              for stage in result.stages]
    return f"{result.cells} cells, {result.split} split: " + "; ".join(stages)


def _rankcorr_numbers(run: RunFolder) -> dict[str, float]:
    """Tau, rho and the mean table accuracy of the supernet's top cells at the run's last
    measured stage (its final weights; PAD-NAS: its last pruning stage), NaN where not
    measured or undefined."""
    if not run.has_truthcorr():
        return dict.fromkeys(("tau_last", "rho_last", "top_truth_last"), math.nan)
    result = run.truthcorr()
    last = result.stages[-1]

    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    top = result.top_truth[last]
    return {"tau_last": number(result.tau[last]), "rho_last": number(result.rho[last]),
            "top_truth_last": float(sum(top) / len(top)) if top else math.nan}


def _cell_columns(cell: Genotype) -> dict[str, Any]:
    return {"arch": table.arch_of(cell), "cifar10_valid": table.lookup(cell).cifar10_valid,
            "skip_share": cell.op_share("skip_connect"),
            "param_free_share": cell.parameter_free_share()}


def _train_acc(metrics: list[dict[str, Any]]) -> dict[int, float]:
    return {int(m["epoch"]): float(m["train_acc"]) for m in metrics
            if m.get("train_acc") is not None}


def _run_rows(run: RunFolder, target: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the final row, the per-epoch rows) of one finished search."""
    config = run.config_dict()
    method = config["method"]
    arm = arm_name(method, int((config.get("hp") or {}).get("order", 1)))
    space = run.space()
    records = run.arch()
    train = _train_acc(run.metrics())
    epochs = []
    for rec in records:
        cell = scored_cell(space, Genotype.from_dict(rec.genotype), torch.tensor(rec.weights),
                           torch.tensor(rec.active))
        epochs.append({"arm": arm, "method": method, "seed": config["seed"],
                       "epoch": rec.epoch, "train_acc": train.get(rec.epoch, math.nan),
                       **(_cell_columns(cell) if cell is not None else
                          {"arch": TIED, "cifar10_valid": math.nan, "skip_share": math.nan,
                           "param_free_share": math.nan})})
    final = scored_cell(space, run.genotype(), torch.tensor(records[-1].weights),
                        torch.tensor(records[-1].active)) if records else run.genotype()
    if final is None:
        raise UsageError(f"{run.path}: the final cell has an edge whose strongest kept op "
                         "is a tie; the table cannot score it")
    truth = table.lookup(final)
    passed = [e for e, acc in sorted(train.items()) if acc >= target]
    summary = run.summary()
    row = {"arm": arm, "method": method, "seed": config["seed"], "trial": run.name,
           "arch": truth.arch, **{c: getattr(truth, c) for c, _ in GT_COLUMNS},
           "percentile": truth.percentile, "skip_share": final.op_share("skip_connect"),
           "param_free_share": final.parameter_free_share(),
           "train_acc_end": train[max(train)] if train else math.nan,
           "train_acc_best": max(train.values()) if train else math.nan,
           "target_epoch": float(passed[0] + 1) if passed else math.nan,
           "epochs_run": summary.epochs_run, "search_time_s": summary.search_time_s,
           "rankcorr": _rankcorr(run), **_rankcorr_numbers(run),
           **{k: config.get(k) for k in ("epochs", "channels", "layers", "image_size")}}
    return row, epochs


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    """Methods in METHODS order, then seed (then epoch): the same rows every rebuild."""
    keys = [k for k in ("method", "seed", "epoch") if k in frame]
    return frame.sort_values(keys, kind="stable", key=lambda c: c.map(METHODS.index)
                             if c.name == "method" else c).reset_index(drop=True)


def reference_rows() -> pd.DataFrame:
    """The all-skip cell, and the table's best and median of each column (the NB201 papers'
    reference rows; 'best' is per column, as their 'optimal' row)."""
    full = table.load_table()
    skip = table.lookup(ALL_SKIP)
    cols = [c for c, _ in GT_COLUMNS]
    return pd.DataFrame([
        {"row": "all-skip cell (table)", **{c: getattr(skip, c) for c in cols},
         "percentile": skip.percentile},
        {"row": "table best (per column)", **{c: float(full[c].max()) for c in cols},
         "percentile": 100.0},
        {"row": "table median (per column)", **{c: float(full[c].median()) for c in cols},
         "percentile": 50.0}], columns=["row", *cols, "percentile"])


def random_rows(k_max: int = RANDOM_K_MAX) -> pd.DataFrame:
    """Random search's exact expected best CIFAR-10 validation accuracy of k = 1..k_max
    distinct cells (groundtruth.nb201.random_search_curve)."""
    curve = table.random_search_curve(k_max, "cifar10_valid")
    return pd.DataFrame({"k": curve.index.to_numpy(), "expected_best": curve.to_numpy()})


def collect(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """The report's tables (module docstring) from the experiment folder."""
    manifest = manifest_of(sweep_dir)
    cfg = Nb201Config.from_manifest(manifest)
    rows, epochs = [], []
    for trial_id in manifest["trials"]:
        run = RunFolder(sweep_dir / trial_id)
        if run.status() != FINISHED:
            continue
        row, per_epoch = _run_rows(run, cfg.train_acc_target)
        rows.append(row)
        epochs += per_epoch
    if not rows:
        raise UsageError(f"{sweep_dir} has no finished search yet")
    return {"runs": _order(pd.DataFrame(rows, columns=_RUNS)),
            "epochs": _order(pd.DataFrame(epochs, columns=_EPOCHS)),
            "reference": reference_rows(), "random": random_rows()}


__all__ = ["ALL_SKIP", "GT_COLUMNS", "arm_name", "collect", "random_rows", "reference_rows"]
