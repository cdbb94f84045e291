"""The results index: any set of run folders (single runs, sweeps, references) as a DataFrame.

Tables, plots and ad-hoc analysis all start here, so that every number shown anywhere comes
from the files a run wrote, read one way (through nasbench_suite.store.runfolder).
:func:`load_index` gives one ``row="run"`` row per run and one ``row="series"`` row per
recorded architecture of methods that return a series (GOLD-NAS, PAD-NAS, NSE). Columns
common to both kinds mean the same thing, so a plot of ``acc`` against ``macs`` can take both:

* identity: ``method``, ``variant`` (every resolved setting that differs among the loaded
  runs of the same method, space and dataset, seed aside: ``clamp=derived, epochs=4``),
  ``short_variant`` (the fewest of those settings that tell the method's variants apart:
  ``epochs=10``), ``label`` (method plus short variant: what tables and plots group by and
  show; the full ``variant`` goes to a table's legend), ``space``, ``dataset``
  (the dataset's identity: its name plus a content hash for files, so two paths to the same
  file are one dataset), ``seed``, ``preset``, ``status``, ``sweep``, ``run``, ``path``,
  ``point`` (series index)
* the derived architecture: ``acc`` (accuracy with inherited weights, batch norm
  recalibrated, on the split named in ``acc_split``: ``score`` for runs of layout 2),
  ``scratch_acc`` (test accuracy trained from scratch, where an experiment did so),
  ``macs`` (multiply-adds, what papers call FLOPs), ``flops`` (the counter's raw FLOPs),
  ``params``, ``param_free_share``, ``genotype`` (JSON)
* the published ground truth, in a space with a table (nb201): :data:`~nasbench_suite.
  groundtruth.GT_COLUMNS` (``gt_cifar10_valid``, ... in percent, ``gt_arch``: the cell the
  table scored, one op per edge, where ``genotype`` may keep several); run rows, series
  rows whose genotype holds one op per edge (a series keeps no weights to pick one), and
  every epoch of :func:`load_epochs` (from arch.jsonl, with the epoch's ``genotype``)
* run rows only: ``supernet_acc``, ``gap`` (missing where a method measures none),
  ``search_time_s``, ``epochs_run``, the learning stats (``alpha_move_median``, ...), the
  final epoch's metrics under their own names, ``counter``, ``torch``, ``device``,
  ``space_log10_size``
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.groundtruth import (
    GT_COLUMNS,
    cell_ground_truth,
    ground_truth,
    several_ops_per_edge,
    tabulated,
)
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.nb201_arch import NB201_OPS
from nasbench_suite.spaces.ops import DARTS_OPS, GOLD_OPS
from nasbench_suite.store.runfolder import FAILED, FINISHED, RunFolder, find_runs

RUN, SERIES = "run", "series"

ID_COLUMNS = ["row", "label", "method", "variant", "short_variant", "space", "dataset", "seed",
              "preset", "status", "sweep", "run", "point"]
#: run-level columns, in display order; final-epoch metrics and series extras follow
VALUE_COLUMNS = ["acc", "acc_split", "scratch_acc", *GT_COLUMNS, "macs", "flops", "params",
                 "param_free_share", "supernet_acc", "gap", "search_time_s", "epochs_run",
                 "space_log10_size", "counter", "torch", "device", "failure", "genotype",
                 "path"]
#: config fields that never make a variant: the run's identity, and where or how it ran
_NOT_VARIANT = frozenset({"method", "space", "dataset", "seed", "preset", "out", "threads",
                          "device", "data_dir", "amp", "requested"})


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """The config with the space's defaults written out (``ops`` null: the space's own op
    list; ``skip`` auto: the space's own skip): a run that left them to the space and one
    that named the same ones are one variant (older runs saved the defaults unresolved)."""
    from nasbench_suite.spaces import SPACES

    space = SPACES.get(str(config.get("space")))
    if space is None:
        return config
    out = dict(config)
    if "ops" in out and not out["ops"]:
        out["ops"] = list(space.default_ops)
    if "skip" in out:
        out["skip"] = space.skip_of(str(out["skip"]))
    return out


def flat_config(config: dict[str, Any]) -> dict[str, str]:
    """Every resolved setting of a run as ``key`` / ``hp.key`` -> its JSON text."""
    flat: dict[str, str] = {}
    for key, value in _resolved(config).items():
        if key == "hp" and isinstance(value, dict):
            for k, v in value.items():
                flat[f"hp.{k}"] = json.dumps(v, sort_keys=True)
        elif key not in _NOT_VARIANT:
            flat[key] = json.dumps(value, sort_keys=True)
    return flat


#: the suite's own op lists by name, for variant labels (GOLD-NAS's is RobustDARTS's S2 too)
_OP_SETS = {frozenset(DARTS_OPS): "darts", frozenset(GOLD_OPS): "gold",
            frozenset(NB201_OPS): "nb201"}


def _short(key: str, value: str) -> str:
    text = json.loads(value)
    if key == "ops" and isinstance(text, list):
        text = _OP_SETS.get(frozenset(text), "_".join(text))
    elif isinstance(text, list):
        text = "_".join(str(v) for v in text)
    return f"{key.removeprefix('hp.')}={text}"


def variants(configs: dict[str, dict[str, Any]], groups: dict[str, tuple[str, ...]]
             ) -> dict[str, str]:
    """Per run (by path), the settings that differ among the runs of its group."""
    flats = {path: flat_config(cfg) for path, cfg in configs.items()}
    out: dict[str, str] = {}
    by_group: dict[tuple[str, ...], list[str]] = {}
    for path, key in groups.items():
        by_group.setdefault(key, []).append(path)
    for paths in by_group.values():
        keys = sorted({k for p in paths for k in flats[p]})
        differing = [k for k in keys if len({flats[p].get(k) for p in paths}) > 1]
        for p in paths:
            out[p] = ", ".join(_short(k, flats[p][k]) for k in differing if k in flats[p])
    return out


#: keys a short variant name tries first, where several separate the variants equally well
_SHORT_FIRST = ("epochs", "image_size", "max_train_images", "batch_size")


def short_variants(configs: dict[str, dict[str, Any]], groups: dict[str, tuple[str, ...]]
                   ) -> dict[str, str]:
    """Per run (by path), the fewest settings that still tell its variant from the others
    of its method and dataset (``epochs=10`` where :func:`variants` lists nine settings):
    what figures and tables name a variant by. The settings are chosen once per method and
    dataset over all spaces, so a variant run in two spaces has one name; greedily, the one
    that tells most variants apart first (ties: :data:`_SHORT_FIRST`, then by name)."""
    flats = {path: flat_config(cfg) for path, cfg in configs.items()}
    full = variants(configs, groups)
    families: dict[tuple[str, ...], list[str]] = {}
    for path, key in groups.items():
        families.setdefault((key[0], key[2]), []).append(path)
    out: dict[str, str] = {}
    for paths in families.values():
        def classes(keys: list[str], paths: list[str] = paths) -> int:
            """Distinct (group, chosen values) among the runs' distinct (group, variant)."""
            return len({(groups[p], tuple(flats[p].get(k) for k in keys)) for p in paths})

        target = len({(groups[p], full[p]) for p in paths})
        candidates = sorted({k for p in paths for k in flats[p]
                             if len({flats[q].get(k) for q in paths}) > 1},
                            key=lambda k: (_SHORT_FIRST.index(k) if k in _SHORT_FIRST
                                           else len(_SHORT_FIRST), k))
        chosen: list[str] = []
        while classes(chosen) < target and candidates:
            best = max(candidates, key=lambda k: classes([*chosen, k]))  # first of the ties
            chosen.append(best)
            candidates.remove(best)
        for p in paths:
            out[p] = ", ".join(_short(k, flats[p][k]) for k in chosen if k in flats[p])
    return out


def scalars(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar entries, with nested mappings flattened one level (``cost_macs``): the columns
    of the index and of a sweep trial's last report to Ray Tune."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and not prefix:
            out.update(scalars(value, f"{key}_"))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[f"{prefix}{key}"] = value
    return out


def _identity(folder: RunFolder, config: dict[str, Any], variant: str, short: str
              ) -> dict[str, Any]:
    trial = folder.trial()
    method = str(config.get("method", ""))
    return {"label": f"{method} ({short})" if short else method, "method": method,
            "variant": variant, "short_variant": short, "space": config.get("space"),
            "dataset": folder.info().dataset_id or config.get("dataset"),
            "seed": config.get("seed"), "preset": config.get("preset"),
            "status": folder.status(), "sweep": trial.sweep if trial else "",
            "run": folder.name, "path": str(folder.path)}


def _run_row(folder: RunFolder, ident: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"row": RUN, **ident}
    if ident["status"] != FINISHED:
        metrics = folder.metrics()
        row.update(scalars(metrics[-1]) if metrics else {})
        row["epochs_run"] = len(metrics)
        if ident["status"] == FAILED:
            failure = folder.failure()
            row["failure"] = failure.reason if failure else ""
        return row
    summary = folder.summary()
    row.update(scalars(summary.final))
    row.update(summary.learning)
    inh, derived = summary.inherited, summary.derived
    row.update(acc=inh.derived_acc, acc_split=inh.split, supernet_acc=inh.supernet_acc,
               gap=inh.gap, macs=derived.macs, flops=derived.flops, params=derived.params,
               param_free_share=derived.param_free_share, search_time_s=summary.search_time_s,
               epochs_run=summary.epochs_run, space_log10_size=summary.space_log10_size,
               counter=summary.counter, torch=summary.torch, device=summary.device)
    row.update(summary.ground_truth or {})
    scratch = folder.evaluations().get("final")
    row["scratch_acc"] = scratch.test_acc if scratch else None
    row["genotype"] = json.dumps(folder.genotype().to_dict(), sort_keys=True)
    return row


def _series_rows(folder: RunFolder, ident: dict[str, Any], run: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    evaluations = folder.evaluations()
    rows = []
    for n, point in enumerate(folder.series()):
        row: dict[str, Any] = {"row": SERIES, **ident, "counter": run.get("counter"),
                               "acc_split": run.get("acc_split")}
        values = scalars({k: v for k, v in point.items() if k != "genotype"})
        row["point"] = values.pop("index", n)
        row.update(values)
        scratch = evaluations.get(f"point{row['point']}")
        if scratch is not None:
            row["scratch_acc"] = scratch.test_acc
        if isinstance(point.get("genotype"), dict):
            row["genotype"] = json.dumps(point["genotype"], sort_keys=True)
            if tabulated(point["genotype"].get("space")):
                genotype = Genotype.from_dict(point["genotype"])
                if not several_ops_per_edge(genotype):  # no weights kept to pick one op
                    row.update(ground_truth(genotype) or {})
        rows.append(row)
    return rows


def _identified(paths: list[str | Path], include_unfinished: bool = False
                ) -> list[tuple[RunFolder, dict[str, Any]]]:
    """Each run folder under ``paths`` (finished ones unless ``include_unfinished``) with its
    identity row; variants are computed over all of them."""
    folders = [f for f in find_runs(paths)
               if include_unfinished or f.status() == FINISHED]
    if not folders:
        raise UsageError(f"no finished runs in {', '.join(str(p) for p in paths)}")
    configs = {str(f.path): f.config_dict() for f in folders}
    groups = {str(f.path): (str(c.get("method")), str(c.get("space")),
                            f.info().dataset_id or str(c.get("dataset")))
              for f, c in zip(folders, configs.values(), strict=True)}
    full, short = variants(configs, groups), short_variants(configs, groups)
    return [(f, _identity(f, configs[str(f.path)], full[str(f.path)], short[str(f.path)]))
            for f in folders]


def load_index(paths: Iterable[str | Path], include_unfinished: bool = False) -> pd.DataFrame:
    """One row per run (and per recorded architecture) of every run folder under ``paths``.

    Only finished runs unless ``include_unfinished`` (failed and interrupted runs then
    appear with ``status`` and, for failures, ``failure`` (the reason); their metrics are the
    last epoch's).
    """
    rows: list[dict[str, Any]] = []
    for folder, ident in _identified(list(paths), include_unfinished):
        run = _run_row(folder, ident)
        rows.append(run)
        if ident["status"] == FINISHED:
            rows.extend(_series_rows(folder, ident, run))
    df = pd.DataFrame(rows)
    for column in ("point", "scratch_acc", "supernet_acc", "gap"):
        if column not in df.columns:
            df[column] = math.nan
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


def epoch_ground_truth(run: RunFolder) -> list[dict[str, Any]]:
    """Per row of the run's arch.jsonl (epoch -1: before the search), its ``epoch``, the
    method's own ``genotype`` (JSON) and the ground truth of the cell scored for it
    (``GT_COLUMNS``, nasbench_suite.groundtruth.scored_cell); empty where the run's space
    has no table.

    Why from arch.jsonl: the run already logs its genotype and architecture weights after
    every epoch, so the trajectory of the true accuracy costs the search nothing and is
    computed where it is read (the results index's per-epoch table).
    """
    import torch

    if not tabulated(run.config_dict().get("space")):
        return []
    space = run.space()
    rows = []
    for rec in run.arch():
        genotype = Genotype.from_dict(rec.genotype)
        truth = cell_ground_truth(space, genotype, torch.tensor(rec.weights),
                                  torch.tensor(rec.active))
        rows.append({"epoch": rec.epoch,
                     "genotype": json.dumps(genotype.to_dict(), sort_keys=True), **(truth or {})})
    return rows


def load_epochs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Every epoch of every finished run: the metrics.jsonl rows plus the run's identity and,
    in a space with a published table, the epoch's genotype and its ground truth."""
    rows = []
    for folder, ident in _identified(list(paths)):
        truth = {row["epoch"]: row for row in epoch_ground_truth(folder)}
        for metrics in folder.metrics():
            rows.append({**ident, **scalars(metrics), **truth.get(metrics["epoch"], {})})
    return pd.DataFrame(rows).sort_values(["label", "space", "dataset", "seed", "run", "epoch"],
                                          kind="stable").reset_index(drop=True)
