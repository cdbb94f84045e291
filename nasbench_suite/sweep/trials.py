"""One sweep trial: run or resume it in its folder, record how it ended, tabulate outcomes.

:func:`run_trial` runs in a Ray worker (or directly). A failure that running again would
repeat (the loss diverged, a bad setting) is recorded in the trial's folder
(``failure.json``) and reported as the trial's result: Ray has nothing to retry. Any other
exception (a crash, a lost node) is recorded too and then raised, so that Ray Tune's
FailureConfig restarts the trial, which resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.errors import Diverged, UsageError
from nasbench_suite.files import atomic_write
from nasbench_suite.store.index import scalars
from nasbench_suite.store.runfolder import (
    FAILED,
    FINISHED,
    PENDING,
    UNFINISHED,
    Failure,
    FolderBusy,
    RunFolder,
)
from nasbench_suite.sweep.spec import Trial

#: called with each epoch's metrics row and the trial's folder (to report a checkpoint)
EpochReport = Callable[[dict[str, Any], RunFolder], None]
#: called once when the trial ends, with its status (and the reason of a failure)
EndReport = Callable[[dict[str, Any]], None]

__all__ = ["FAILED", "FINISHED", "PENDING", "UNFINISHED", "Outcome", "final_results",
           "record_failure", "run_trial", "summary_table", "write_trials_csv"]


@dataclass
class Outcome:
    """What became of a trial in one invocation of the sweep."""

    trial: Trial
    status: str
    reason: str = ""
    trained: bool = False
    action: str = ""


def record_failure(folder: RunFolder, reason: str, error: BaseException | None = None) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_failure(Failure(
        reason=reason, error_type=type(error).__name__ if error else None,
        epochs_done=folder.epochs_done() if folder.is_run() else 0,
        traceback="".join(traceback.format_exception(error)) if error else None))


def run_trial(spec: dict[str, Any], on_epoch: EpochReport | None = None,
              on_end: EndReport | None = None, log: Callable[[str], None] = print) -> str:
    """Run or resume one trial in its folder; returns its status afterwards.

    ``spec`` is plain data (it crosses into Ray workers): ``run_dir``, ``config`` (a resolved
    config), ``threads`` (torch threads when the config sets none) and ``cwd`` (the driver's
    folder, so relative paths in the config mean what they meant there).
    """
    from nasbench_suite.config import resolve_config
    from nasbench_suite.training.loop import run_search

    end = on_end or (lambda row: None)
    folder = RunFolder(spec["run_dir"])
    if spec.get("cwd") and Path(spec["cwd"]).is_dir():
        os.chdir(spec["cwd"])
    if folder.status() == FINISHED:
        end({**final_results(folder), "status": FINISHED, "trained": False})
        return FINISHED
    writer = folder.writer()
    if writer is not None:
        return _busy(folder, FolderBusy(f"{folder.path} is being written by another "
                                        f"process (pid {writer})"), end)
    folder.clear_failure()
    try:
        cfg = resolve_config(spec["config"])
        if cfg.threads is None and spec.get("threads"):
            import torch

            torch.set_num_threads(int(spec["threads"]))
        resume = folder.path if folder.has_checkpoint() else None

        def report(row: dict[str, Any], run: RunFolder) -> None:
            if on_epoch is not None:
                on_epoch({**row, "status": "running", "epochs": cfg.epochs}, run)

        run_search(cfg, resume_dir=resume, run_dir=None if resume else folder.path,
                   progress=False, on_epoch=report, log=log)
    except FolderBusy as exc:
        return _busy(folder, exc, end)
    except (Diverged, UsageError) as exc:
        kind = "diverged" if isinstance(exc, Diverged) else "bad input"
        reason = f"{kind}: {exc}"
        record_failure(folder, reason, exc)
        end({**final_results(folder), "status": FAILED, "reason": reason, "trained": True})
        return FAILED
    except Exception as exc:
        # Recorded in case no retry comes; raised so that Ray Tune can retry it.
        record_failure(folder, f"{type(exc).__name__}: {exc}", exc)
        raise
    status = folder.status()
    end({**final_results(folder), "status": status, "trained": True})
    return status


def final_results(folder: RunFolder) -> dict[str, Any]:
    """A trial's last result for Ray Tune: its last epoch's metrics and, once finished, what
    ``nasbench table`` shows of it under the same names (``acc``: the derived network with
    inherited weights on ``acc_split``; ``macs``, ``params``...; the published ground truth
    ``gt_*`` in a space with a table). Tune's ``ResultGrid``, ``ExperimentAnalysis`` and
    ``get_best_result`` read a trial's last report, so it must hold every metric."""
    row: dict[str, Any] = {}
    if folder.is_run():
        metrics = folder.metrics()
        row.update(scalars(metrics[-1]) if metrics else {})
    if folder.finished():
        summary = folder.summary()
        inh, derived = summary.inherited, summary.derived
        row.update(scalars(summary.final))
        row.update(summary.learning)
        row.update(acc=inh.derived_acc, acc_split=inh.split, supernet_acc=inh.supernet_acc,
                   gap=inh.gap, macs=derived.macs, flops=derived.flops,
                   params=derived.params, param_free_share=derived.param_free_share,
                   search_time_s=summary.search_time_s, epochs_run=summary.epochs_run)
        row.update(scalars(summary.ground_truth or {}))
    return row


def _busy(folder: RunFolder, exc: FolderBusy, end: EndReport) -> str:
    """Another process writes the trial's folder: report it and leave the folder alone."""
    end({"status": FAILED, "reason": str(exc), "trained": False})
    return folder.status()


# -- tables of outcomes -----------------------------------------------------------------------
def _row(outcome: Outcome) -> dict[str, Any]:
    folder = RunFolder(outcome.trial.run_dir)
    row: dict[str, Any] = {"trial": outcome.trial.trial_id, "status": outcome.status,
                           "action": outcome.action,
                           "epochs": folder.epochs_done() if folder.is_run() else 0}
    if outcome.status == FINISHED:
        summary = folder.summary()
        row.update(acc=summary.inherited.derived_acc, split=summary.inherited.split,
                   macs=summary.derived.macs, params=summary.derived.params,
                   search_time_s=summary.search_time_s)
    row["reason"] = outcome.reason
    return row


_COLUMNS = ["trial", "status", "action", "epochs", "acc", "split", "macs", "params",
            "search_time_s", "reason"]


def outcomes_frame(outcomes: Sequence[Outcome]) -> pd.DataFrame:
    return pd.DataFrame([_row(o) for o in outcomes], columns=_COLUMNS)


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """The end-of-sweep table: one line per trial (``acc``: the derived network with
    inherited weights, on the split named beside it)."""
    df = outcomes_frame(outcomes)
    shown = pd.DataFrame({
        "trial": df["trial"], "status": df["status"], "this run": df["action"],
        "epochs": df["epochs"],
        "acc": df["acc"].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}"),
        "split": df["split"].fillna("-"),
        "MMACs": df["macs"].map(lambda v: "-" if pd.isna(v) else f"{v / 1e6:.2f}"),
        "params (k)": df["params"].map(lambda v: "-" if pd.isna(v) else f"{v / 1e3:.1f}"),
        "search (s)": df["search_time_s"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}"),
        "reason": df["reason"]})
    return shown.to_string(index=False)


def write_trials_csv(path: Path, outcomes: Sequence[Outcome]) -> None:
    atomic_write(path, outcomes_frame(outcomes).to_csv(index=False, lineterminator="\n"))
