"""The results index: any set of run folders (single runs, sweeps, references) as a DataFrame.

Tables, plots and ad-hoc analysis all start here, so that every number shown anywhere
comes from the files a run wrote, read one way. :func:`load_index` gives one ``row="run"``
row per run and one ``row="series"`` row per recorded architecture of methods that return
a series (GOLD-NAS, PAD-NAS, NSE). Columns common to both kinds mean the same thing, so a
plot of ``acc`` against ``macs`` can take both kinds of point:

* identity: ``method``, ``variant`` (a sweep's grid values), ``label`` (method plus
  variant: what tables and plots group by), ``space``, ``dataset``, ``seed``, ``preset``,
  ``status``, ``sweep``, ``run`` (folder name), ``path``, ``point`` (series index)
* the derived architecture: ``acc`` (held-out accuracy with inherited weights), ``macs``
  (multiply-adds, what papers call FLOPs), ``flops`` (the counter's raw FLOPs), ``params``,
  ``param_free_share``, ``genotype`` (JSON)
* run rows only: ``supernet_acc``, ``gap``, ``search_time_s``, ``epochs_run``, the final
  epoch's metrics under their own names (``heldout_acc``, ``train_loss``, ...), ``counter``
  (the cost counter's name and version), ``torch``, ``device``, ``space_log10_size``
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite import rundir
from nasbench_suite.errors import UsageError
from nasbench_suite.sweep import FAILURE as _FAILURE
from nasbench_suite.sweep import TRIAL as _TRIAL

RUN, SERIES = "run", "series"
FINISHED, FAILED, UNFINISHED = "finished", "failed", "unfinished"

ID_COLUMNS = ["row", "label", "method", "variant", "space", "dataset", "seed", "preset",
              "status", "sweep", "run", "point"]
#: run-level columns, in display order; final-epoch metrics and series extras follow
VALUE_COLUMNS = ["acc", "macs", "flops", "params", "param_free_share", "supernet_acc", "gap",
                 "search_time_s", "epochs_run", "heldout_split", "space_log10_size",
                 "counter", "torch", "device", "failure", "genotype", "path"]


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders given directly or anywhere below the given folders, sorted.

    A run folder is one with a config.yaml; hidden folders (Ray Tune's ``.ray``) are not
    searched.
    """
    found: set[Path] = set()
    given = [Path(p) for p in paths]
    if not given:
        raise UsageError("give at least one results folder")
    for root in given:
        if not root.is_dir():
            raise UsageError(f"not a folder: {root}")
        if (root / rundir.CONFIG).is_file():
            found.add(root.resolve())
            continue
        for config in root.rglob(rundir.CONFIG):
            rel = config.relative_to(root).parts
            if not any(part.startswith(".") for part in rel):
                found.add(config.parent.resolve())
    if not found:
        raise UsageError(f"no run folders in {', '.join(str(p) for p in given)}")
    return sorted(found)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is unreadable: {exc}") from None


def _status(run_dir: Path) -> str:
    if (run_dir / rundir.SUMMARY).exists():
        return FINISHED
    if (run_dir / _FAILURE).exists():
        return FAILED
    return UNFINISHED


def _identity(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    trial = _read_json(run_dir / _TRIAL) if (run_dir / _TRIAL).exists() else {}
    method = str(config.get("method", ""))
    variant = str(trial.get("variant", ""))
    return {"label": f"{method} ({variant})" if variant else method, "method": method,
            "variant": variant, "space": config.get("space"), "dataset": config.get("dataset"),
            "seed": config.get("seed"), "preset": config.get("preset"),
            "status": _status(run_dir), "sweep": str(trial.get("sweep", "")),
            "run": run_dir.name, "path": str(run_dir)}


def _scalars(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar entries, with nested mappings flattened one level (``cost_macs``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and not prefix:
            out.update(_scalars(value, f"{key}_"))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[f"{prefix}{key}"] = value
    return out


def _run_row(run_dir: Path, ident: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"row": RUN, **ident}
    if ident["status"] != FINISHED:
        metrics = rundir.read_jsonl(run_dir / rundir.METRICS)
        row.update(metrics[-1] if metrics else {})
        row["epochs_run"] = len(metrics)
        if ident["status"] == FAILED:
            row["failure"] = str(_read_json(run_dir / _FAILURE).get("reason", ""))
        return row
    summary = _read_json(run_dir / rundir.SUMMARY)
    row.update(_scalars(summary.get("final") or {}))
    inherited, derived = summary.get("inherited") or {}, summary.get("derived") or {}
    row.update(acc=inherited.get("derived_acc"), supernet_acc=inherited.get("supernet_acc"),
               gap=inherited.get("gap"), macs=derived.get("macs"), flops=derived.get("flops"),
               params=derived.get("params"), param_free_share=derived.get("param_free_share"))
    for key in ("search_time_s", "epochs_run", "heldout_split", "space_log10_size", "counter",
                "torch", "device"):
        row[key] = summary.get(key)
    if (run_dir / rundir.GENOTYPE).exists():
        row["genotype"] = json.dumps(_read_json(run_dir / rundir.GENOTYPE), sort_keys=True)
    return row


def _series_rows(run_dir: Path, ident: dict[str, Any], counter: Any) -> list[dict[str, Any]]:
    """series.json (with genotypes) when present, else the summary's copy (without)."""
    if (run_dir / rundir.SERIES).exists():
        series = _read_json(run_dir / rundir.SERIES)
    else:
        series = (_read_json(run_dir / rundir.SUMMARY).get("series") or [])
    rows = []
    for n, point in enumerate(series):
        if not isinstance(point, dict):
            raise UsageError(f"{run_dir}/{rundir.SERIES}: entry {n} is not a mapping")
        row: dict[str, Any] = {"row": SERIES, **ident, "counter": counter}
        values = _scalars({k: v for k, v in point.items() if k != "genotype"})
        row["point"] = values.pop("index", n)
        row.update(values)
        if isinstance(point.get("genotype"), dict):
            row["genotype"] = json.dumps(point["genotype"], sort_keys=True)
        rows.append(row)
    return rows


def load_index(paths: Iterable[str | Path], include_unfinished: bool = False) -> pd.DataFrame:
    """One row per run (and per recorded architecture) of every run folder under ``paths``.

    Only finished runs unless ``include_unfinished`` (failed and interrupted runs then
    appear with ``status`` and, for failures, ``failure`` (the reason); their metrics are the
    last epoch's).
    """
    paths = list(paths)
    rows: list[dict[str, Any]] = []
    for run_dir in find_run_dirs(paths):
        ident = _identity(run_dir, rundir.read_run_config(run_dir))
        if ident["status"] != FINISHED and not include_unfinished:
            continue
        run = _run_row(run_dir, ident)
        rows.append(run)
        if ident["status"] == FINISHED:
            rows.extend(_series_rows(run_dir, ident, run.get("counter")))
    if not rows:
        raise UsageError(f"no finished runs in {', '.join(str(p) for p in paths)}")
    df = pd.DataFrame(rows)
    if "point" not in df.columns:
        df["point"] = float("nan")
    extra = sorted(c for c in df.columns if c not in ID_COLUMNS and c not in VALUE_COLUMNS)
    columns = [c for c in ID_COLUMNS + VALUE_COLUMNS[:-2] + extra + VALUE_COLUMNS[-2:]
               if c in df.columns]
    df = df[columns]
    df["seed"] = df["seed"].astype(int)
    order = df.assign(_kind=(df["row"] == SERIES).astype(int)).sort_values(
        ["label", "space", "dataset", "seed", "run", "_kind", "point"], kind="stable",
        na_position="first")
    return order.drop(columns="_kind").reset_index(drop=True)


def runs(df: pd.DataFrame) -> pd.DataFrame:
    """The run rows of an index (one per run)."""
    return df[df["row"] == RUN].reset_index(drop=True)


def load_epochs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Every epoch of every finished run: the metrics.jsonl rows plus the run's identity."""
    paths = list(paths)
    rows = []
    for run_dir in find_run_dirs(paths):
        ident = _identity(run_dir, rundir.read_run_config(run_dir))
        if ident["status"] != FINISHED:
            continue
        for metrics in rundir.read_jsonl(run_dir / rundir.METRICS):
            rows.append({**ident, **_scalars(metrics)})
    if not rows:
        raise UsageError(f"no finished runs in {', '.join(str(p) for p in paths)}")
    return pd.DataFrame(rows).sort_values(["label", "space", "dataset", "seed", "run", "epoch"],
                                          kind="stable").reset_index(drop=True)
