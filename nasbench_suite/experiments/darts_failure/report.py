"""The report of `nasbench reproduce darts-failure`, from the experiment folder alone.

:func:`collect` reads the run folders and trainings from scratch (no checkpoints needed) into
four tables; :func:`write_report` turns them into report/: report.md, the CSVs and the
figures (experiments.darts_failure.plots), each with the data it plots. The same folder
always gives the same files.

* ``trials``: one row per arm and seed at the end of the search: the derived architecture's
  parameter-free share, skip connections in normal cells, FLOPs, params, accuracies with
  inherited weights (scoring split) and from scratch (test split), the first and last
  eigenvalue, how far the alphas moved, the collapse epoch (the first whose parameter-free
  share exceeds the threshold), the search time. The remedies' arms (DARTS-ES, P-DARTS's
  skip limit) are rows of their own, replayed on the DARTS searches.
* ``trajectories``: every epoch of every search: the indicators of the architecture the
  method would derive at that epoch.
* ``series``: the GOLD-NAS architectures trained from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import manifest_of
from nasbench_suite.experiments.darts_failure.arms import arm_title
from nasbench_suite.experiments.darts_failure.config import (
    ARM_TABLE,
    INDICATORS,
    Arm,
    ReproduceConfig,
    arm_of,
)
from nasbench_suite.experiments.darts_failure.control import (
    NOT_MEASURED,
    collect_control,
    control_markdown,
    control_verdicts,
)
from nasbench_suite.experiments.darts_failure.verdicts import (
    PAST_FIT,
    arm_verdicts,
    confound_table,
    finals,
    scratch_verdict,
    share_decomposition,
    space_attribution,
)
from nasbench_suite.experiments.evals import Settings, remedy_genotypes, trained_as
from nasbench_suite.experiments.verdicts import verdict_markdown
from nasbench_suite.files import atomic_write, write_json
from nasbench_suite.spaces import Genotype
from nasbench_suite.spaces.ops import chance_parameter_free_share
from nasbench_suite.store.runfolder import FINISHED, RunFolder

REPORT = "report"
#: report columns: (column, header, how to print it)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("param_free_share_normal", "param-free share (normal cells)", "{:.2f}"),
    ("param_free_chance", "same, a uniform random cell", "{:.2f}"),
    ("param_free_share", "param-free share (all cells)", "{:.2f}"),
    ("skip_share_normal", "skip share (normal)", "{:.2f}"),
    ("mmacs", "MFLOPs (mult-adds)", "{:.2f}"),
    ("mparams", "params (M)", "{:.4f}"),
    ("supernet_acc", "supernet acc", "{:.3f}"),
    ("inherited_acc", "derived acc (inherited)", "{:.3f}"),
    ("drop", "drop", "{:.3f}"),
    ("gate_median", "surviving gates, median", "{:.3f}"),
    ("gate_saturated", "surviving gates > 0.95", "{:.2f}"),
    ("scratch_acc", "acc from scratch", "{:.3f}"),
    ("eig_start", "eigenvalue start", "{:.3g}"),
    ("eig_end", "eigenvalue end", "{:.3g}"),
    ("eig_ratio", "eigenvalue end/start", "{:.2f}"),
    ("edge_spread_median", "edge spread", "{:.3f}"),
    ("choice_changed_share", "choices changed since epoch 0", "{:.2f}"),
    ("collapse_epoch", "collapse epoch", "{:.0f}"),
    ("train_acc_end", "supernet train acc (end)", "{:.3f}"),
    ("fit_epoch", "epoch train acc passed the fit threshold", "{:.0f}"),
    ("search_time_s", "search (s)", "{:.0f}"),
)
_TRIAL_COLUMNS = ["arm", "arm_label", "method", "space", "seed", "trial", "label",
                  *[c for c, _, _ in COLUMNS],
                  "collapse_timing", "free_normal_rise", "stop_epoch", "split", "epochs_run",
                  "order"]
#: a GOLD-NAS gate counts as saturated above this (the derived network is then its supernet)
SATURATED = 0.95
#: collapse timing words: before the supernet fitted its training data, after, or none
EARLY, LATE, NONE = "early", "late", "not at all"
_TRAJECTORY = ["arm", "seed", "epoch", *[c for c, _ in INDICATORS], "alpha_move_median",
               "choice_changed_share"]
_SERIES = ["arm", "seed", "point", "epoch", "mmacs", "mparams", "inherited_acc",
           "scratch_acc"]


def gate_saturation(weights: Any, active: Any) -> tuple[float, float]:
    """(median, share above SATURATED) of the surviving gates: the active entries of the last
    recorded gate values. GOLD-NAS's derived network keeps exactly its surviving ops, each
    scaled by its gate in the supernet: with every gate near 1 the derived network is its
    supernet, and a drop near 0 follows from that, not from the search."""
    import numpy as np

    w = np.asarray(weights, dtype=float)
    mask = np.asarray(active, dtype=bool) & (w > 0)
    if not mask.any():
        return math.nan, math.nan
    alive = w[mask]
    return float(np.median(alive)), float((alive > SATURATED).mean())


def fit_epoch(metrics: list[dict[str, Any]], threshold: float) -> float:
    """The first epoch (1-based) whose supernet training accuracy reached ``threshold``."""
    for row in metrics:
        if row.get("train_acc") is not None and row["train_acc"] >= threshold:
            return float(row["epoch"] + 1)
    return math.nan


def collapse_timing(collapse: float, fitted: float) -> str:
    """``early``: the collapse came before the supernet fitted its training data (or it never
    did); ``late``: at or after; ``not at all``: no collapse."""
    if math.isnan(collapse):
        return NONE
    return LATE if not math.isnan(fitted) and collapse >= fitted else EARLY


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _ratio(eig: list[tuple[int, float]], end: float) -> float:
    """The eigenvalue at the end over its first measurement, within one run (compared only
    within an arm: spaces and methods differ in dimension and loss); NaN where the first is
    not positive."""
    return end / eig[0][1] if eig and eig[0][1] > 0 else math.nan


def _collapse(normal: dict[int, float], threshold: float, until: int | None = None) -> float:
    """The first epoch (1-based) whose derived normal cells' parameter-free share
    (``normal``: epoch -> share) exceeds ``threshold``."""
    for epoch in sorted(e for e in normal if e >= 0):
        if until is not None and epoch > until:
            break
        if normal[epoch] > threshold:
            return float(epoch + 1)
    return math.nan


def _rise(normal: dict[int, float], last: int) -> float:
    """How much the normal cells' parameter-free share rose over the run's last PAST_FIT
    epochs (NaN for a shorter run): a share still rising at the end has not settled, so its
    absence of a collapse cannot contradict one (verdicts.outcome)."""
    before = normal.get(last - PAST_FIT)
    return math.nan if before is None or last not in normal else normal[last] - before


def _normal_free(records: Sequence[Any]) -> dict[int, float]:
    """epoch -> the parameter-free share of the normal cells derived at that epoch (from
    arch.jsonl's genotypes, so runs that predate the measure have it too): the collapse
    indicator. Reduction cells keep pools by design (DARTS V2's are all pools and skips:
    0.625 over both cells, 0.25 in its normal cell), so counting them would call a good
    restricted cell collapsed and weigh the spaces differently (2 of 5 relaxed cells reduce,
    1 of 2 restricted groups)."""
    return {a.epoch: Genotype.from_dict(a.genotype).parameter_free_share(reduction=False)
            for a in records}


def _changes_since_first(records: Sequence[Any]) -> dict[int, float]:
    """epoch -> the share of edges whose strongest op changed since the architecture derived
    after epoch 0 (against the initialisation it would count flips of the start's noise:
    training/learning.py)."""
    import torch

    from nasbench_suite.training.learning import choices_changed

    weights = {a.epoch: torch.tensor(a.weights) for a in records}
    if 0 not in weights:
        return {}
    return {e: choices_changed(weights[0], w) for e, w in weights.items() if e >= 0}


def collect(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """The report's tables (module docstring) from the experiment folder."""
    manifest = manifest_of(sweep_dir)
    cfg = ReproduceConfig.from_manifest(manifest)
    settings = Settings(series_seeds=tuple(cfg.series_seeds), darts_es=cfg.darts_es,
                        pdarts_skips=cfg.pdarts_skips)
    rows, trajectory, series_rows = [], [], []
    for trial_id in manifest["trials"]:
        run = RunFolder(sweep_dir / trial_id)
        if run.status() != FINISHED:
            continue
        config = run.config_dict()
        summary = run.summary()
        order = int((config.get("hp") or {}).get("order", 1))
        arm_spec = arm_of(config["method"], config["space"], config)
        arm = arm_title(arm_spec, order)
        rank = next((i for i, a in enumerate(ARM_TABLE) if a.label == arm_spec.label),
                    len(ARM_TABLE))
        metrics = run.metrics()
        records = run.arch()
        changed = _changes_since_first(records)
        normal = _normal_free(records)
        eig = [(m["epoch"], m["hessian_eig"]) for m in metrics if m.get("hessian_eig")
               is not None]
        for m in metrics:
            trajectory.append({"arm": arm, "seed": config["seed"], "epoch": m["epoch"],
                               **{c: _nan(m.get(c)) for c, _ in INDICATORS
                                  if c not in ("derived_mmacs", "param_free_share_normal")},
                               "param_free_share_normal": normal.get(m["epoch"], math.nan),
                               "derived_mmacs": _nan(m.get("derived_macs")) / 1e6,
                               "alpha_move_median": _nan(m.get("alpha_move_median")),
                               "choice_changed_share": changed.get(m["epoch"], math.nan)})
        labels = trained_as(run, settings) if summary.layout >= 2 else {"final": "final"}
        inh, derived = summary.inherited, summary.derived
        supernet = _nan(inh.supernet_acc)
        final_genotype = run.genotype()
        space = run.space()
        scratch = run.evaluation_of(labels.get("final", "final"), final_genotype)
        gates = (gate_saturation(records[-1].weights, records[-1].active)
                 if config["method"] == "gold" and records else (math.nan, math.nan))
        collapse = _collapse(normal, cfg.collapse_threshold)
        fitted = fit_epoch(metrics, cfg.fit_threshold)
        rows.append({
            "arm": arm, "arm_label": arm_spec.label, "method": config["method"],
            "space": config["space"], "seed": config["seed"], "trial": trial_id,
            "label": "final",
            "param_free_share_normal": final_genotype.parameter_free_share(reduction=False),
            "param_free_chance": chance_parameter_free_share(space.ops),
            "param_free_share": derived.param_free_share,
            "skip_share_normal": final_genotype.op_share("skip_connect", reduction=False),
            "mmacs": derived.macs / 1e6, "mparams": derived.params / 1e6,
            "supernet_acc": supernet, "inherited_acc": _nan(inh.derived_acc),
            "drop": supernet - _nan(inh.derived_acc), "split": inh.split,
            "gate_median": gates[0], "gate_saturated": gates[1],
            "train_acc_end": _nan(metrics[-1].get("train_acc")), "fit_epoch": fitted,
            "collapse_timing": collapse_timing(collapse, fitted), "order": rank * 10,
            "scratch_acc": scratch.test_acc if scratch else math.nan,
            "eig_start": eig[0][1] if eig else math.nan,
            "eig_end": eig[-1][1] if eig else math.nan,
            "eig_ratio": _ratio(eig, eig[-1][1] if eig else math.nan),
            "edge_spread_median": _nan(summary.learning.get("edge_spread_median")),
            "choice_changed_share": changed.get(metrics[-1]["epoch"], math.nan),
            "collapse_epoch": collapse,
            "search_time_s": summary.search_time_s, "epochs_run": summary.epochs_run,
            "free_normal_rise": _rise(normal, metrics[-1]["epoch"]),
            "stop_epoch": math.nan})
        if summary.layout >= 2:
            rows += _remedy_rows(run, space, settings, labels, metrics, eig, order,
                                 cfg.collapse_threshold, arm_spec, rank, fitted, normal,
                                 changed)
        if run.has_series() and config["seed"] in cfg.series_seeds:
            for n, point in enumerate(run.series()):
                label = f"point{point.get('index', n)}"
                genotype = Genotype.from_dict(point["genotype"])
                if genotype == final_genotype:
                    label = "final"
                trained = run.evaluation_of(labels.get(label, label), genotype)
                if trained is not None:
                    series_rows.append({
                        "arm": arm, "seed": config["seed"], "point": point.get("index", n),
                        "epoch": point["epoch"], "mmacs": point["macs"] / 1e6,
                        "mparams": point["params"] / 1e6,
                        "inherited_acc": _nan(point.get("acc")),
                        "scratch_acc": trained.test_acc})
    if not rows:
        raise UsageError(f"{sweep_dir} has no finished trial yet")
    trials = pd.DataFrame(rows, columns=_TRIAL_COLUMNS)
    order = dict(zip(trials["arm"], trials["order"], strict=True))
    trials = trials.sort_values(["arm", "seed"], kind="stable",
                                key=lambda c: c.map(order) if c.name == "arm" else c)
    traj = pd.DataFrame(trajectory, columns=_TRAJECTORY)
    traj = traj.sort_values(["arm", "seed", "epoch"], kind="stable",
                            key=lambda c: c.map(order) if c.name == "arm" else c)
    return {"trials": trials.reset_index(drop=True), "trajectories": traj.reset_index(drop=True),
            "series": pd.DataFrame(series_rows, columns=_SERIES)}


def _remedy_rows(run: RunFolder, space: Any, settings: Any, labels: dict[str, str],
                 metrics: list[dict[str, Any]],
                 eig: list[tuple[int, float]], order: int,
                 threshold: float, arm: Arm, rank: int, fitted: float,
                 normal: dict[int, float],
                 changed: dict[int, float]) -> list[dict[str, Any]]:
    """One row per remedy replayed on a DARTS search (reproduce_evals.remedy_genotypes),
    costed in the search's ``space`` (RunFolder.space)."""
    config = run.config_dict()
    out = []
    for label, (genotype, facts) in remedy_genotypes(run, settings).items():
        cost = space.genotype_cost(genotype)
        epoch = facts.get("epoch", metrics[-1]["epoch"])
        at = next((m for m in metrics if m["epoch"] == epoch), {})
        trained = run.evaluation_of(labels.get(label, label), genotype)
        stop = facts.get("stopped_at")
        until = stop if label.startswith("darts-es") else None
        end = next((v for e, v in eig if e == epoch), math.nan)
        collapse = _collapse(normal, threshold, until)
        out.append({
            "arm": arm_title(arm, order, label), "arm_label": arm.label, "method": "darts",
            "order": rank * 10 + (1 if label == "darts-es" else 2),
            "gate_median": math.nan, "gate_saturated": math.nan,
            "train_acc_end": _nan(at.get("train_acc")), "fit_epoch": fitted,
            "collapse_timing": collapse_timing(collapse, fitted),
            "space": config["space"], "seed": config["seed"], "trial": run.name,
            "label": label, "param_free_share": genotype.parameter_free_share(),
            "param_free_chance": chance_parameter_free_share(space.ops),
            "param_free_share_normal": genotype.parameter_free_share(reduction=False),
            "skip_share_normal": genotype.op_share("skip_connect", reduction=False),
            "mmacs": cost.macs / 1e6, "mparams": cost.params / 1e6,
            "supernet_acc": _nan(at.get("supernet_acc_score")) if label == "darts-es"
            else math.nan,
            "inherited_acc": _nan(at.get("derived_acc_score")) if label == "darts-es"
            else math.nan,
            "drop": (_nan(at.get("supernet_acc_score")) - _nan(at.get("derived_acc_score")))
            if label == "darts-es" else math.nan,
            "split": "score", "scratch_acc": trained.test_acc if trained else math.nan,
            "eig_start": eig[0][1] if eig else math.nan,
            "eig_end": end,
            "eig_ratio": _ratio(eig, end),
            "edge_spread_median": _nan(at.get("edge_spread_median")),
            "choice_changed_share": changed.get(epoch, math.nan),
            "collapse_epoch": collapse,
            "search_time_s": _nan(at.get("search_time_s")) if stop is not None
            else run.summary().search_time_s,
            "epochs_run": (stop + 1) if stop is not None else run.summary().epochs_run,
            "stop_epoch": float(stop + 1) if stop is not None else math.nan})
    return out


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per arm (std 0 for a single seed); the collapse epoch's
    mean is over the seeds that collapsed, and ``collapsed`` counts them."""
    cols = [c for c, _, _ in COLUMNS]
    grouped = trials.groupby("arm", sort=False)[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{c}_{s}" for s, c in out.columns]
    out.insert(0, "seeds", grouped.size())
    out.insert(1, "collapsed", trials.groupby("arm", sort=False)["collapse_epoch"].count())
    out.insert(2, "fitted", trials.groupby("arm", sort=False)["fit_epoch"].count())
    out.insert(3, "collapse_timing", trials.groupby("arm", sort=False)["collapse_timing"].agg(
        lambda words: ", ".join(f"{w} {int((words == w).sum())}" for w in (EARLY, LATE, NONE)
                                if (words == w).any())))
    return out.reset_index()


def _pm(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "not measured"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def markdown_tables(trials: pd.DataFrame, summary: pd.DataFrame,
                    series: pd.DataFrame) -> tuple[str, str, str]:
    """(summary, per-seed, series) Markdown tables (pandas)."""
    heads = [h for _, h, _ in COLUMNS]
    table = pd.DataFrame(
        {"arm": summary["arm"], "seeds": summary["seeds"].astype(str),
         "collapsed": summary["collapsed"].astype(str),
         "collapse timing": summary["collapse_timing"].astype(str),
         **{h: [_pm(m, s, f) for m, s in zip(summary[f"{c}_mean"], summary[f"{c}_std"],
                                             strict=True)] for c, h, f in COLUMNS}},
        columns=["arm", "seeds", "collapsed", "collapse timing", *heads])
    # the fit epoch is a mean over the seeds that got there; say how many did
    fit_head = next(h for c, h, _ in COLUMNS if c == "fit_epoch")
    table[fit_head] = [f"{n} of {k} seeds" + ("" if n == 0 else f": {text}")
                       for n, k, text in zip(summary["fitted"], summary["seeds"],
                                             table[fit_head], strict=True)]
    per = pd.DataFrame({"arm": trials["arm"], "seed": trials["seed"].astype(str),
                        "collapse timing": trials["collapse_timing"],
                        **{h: ["–" if pd.isna(v) else f.format(v) for v in trials[c]]
                           for c, h, f in COLUMNS}},
                       columns=["arm", "seed", "collapse timing", *heads])
    ser = pd.DataFrame({
        "run": series["arm"], "seed": series["seed"].astype(str),
        "point": series["point"].astype(str), "epoch": series["epoch"].astype(str),
        "MFLOPs": series["mmacs"].map("{:.2f}".format),
        "params (M)": series["mparams"].map("{:.4f}".format),
        "inherited acc": series["inherited_acc"].map("{:.3f}".format),
        "acc from scratch": series["scratch_acc"].map("{:.3f}".format)},
        columns=["run", "seed", "point", "epoch", "MFLOPs", "params (M)", "inherited acc",
                 "acc from scratch"])
    return _markdown(table), _markdown(per), _markdown(ser)


def write_report(sweep_dir: Path, out: Path | None = None) -> list[Path]:
    """report.md, its CSVs and figures (each with the data it plots) from ``sweep_dir``;
    the same folder always gives the same files."""

    from nasbench_suite.experiments.darts_failure.plots import figures
    from nasbench_suite.report.plots import BUILD, drawing_build, save_figure

    out = out or sweep_dir / REPORT
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder")
    tables = collect(sweep_dir)
    trials, traj, series = tables["trials"], tables["trajectories"], tables["series"]
    summary = summarise(trials)
    cfg = ReproduceConfig.from_manifest(manifest_of(sweep_dir))
    eig = traj.dropna(subset=["hessian_eig"])[["arm", "seed", "epoch", "hessian_eig"]].rename(
        columns={"hessian_eig": "eigenvalue"})
    written: list[Path] = []
    control = collect_control(sweep_dir)
    for name, frame in (("trials.csv", trials), ("summary.csv", summary),
                        ("trajectories.csv", traj), ("eigenvalues.csv", eig),
                        ("series.csv", series), ("control.csv", control)):
        atomic_write(out / name, frame.to_csv(index=False, float_format="%.6g"))
        written.append(out / name)
    shown = []
    for stem, title, fig in figures(trials, traj, series, cfg.collapse_threshold,
                                    cfg.fit_threshold, control):
        written.extend(save_figure(fig, out, stem, ("png",)))
        shown.append((stem, title))
    text = _report_text(cfg, summary, trials, series, shown, sweep_dir, control)
    atomic_write(out / "report.md", text)
    # PNG bytes depend on the matplotlib that drew them; the tables and data do not.
    write_json(out / BUILD, drawing_build())
    return [out / "report.md", *written, out / BUILD]


def _report_text(cfg: ReproduceConfig, summary: pd.DataFrame, trials: pd.DataFrame,
                 series: pd.DataFrame, figures: Sequence[tuple[str, str]],
                 sweep_dir: Path, control: pd.DataFrame | None = None) -> str:
    table, per_trial, series_table = markdown_tables(trials, summary, series)
    order = "second" if cfg.second_order else "first"
    eval_epochs = cfg.eval_epochs or f"the {cfg.eval_preset} preset's"
    missing = sorted(set(manifest_of(sweep_dir)["trials"]) - set(trials["trial"]))
    remedies = []
    if cfg.darts_es:
        remedies.append("DARTS-ES (RobustDARTS's early stop as its public code states it, "
                        "replayed on each DARTS search: eigenvalue every 2 epochs, local "
                        "averages over 5 measurements, a stop when one exceeds 1.3x the "
                        "average 4 measurements before, none before epoch 10; the "
                        "architecture of the earlier average's epoch; an accuracy from "
                        "scratch only where that architecture was trained)")
    if cfg.pdarts_skips is not None:
        remedies.append(f"P-DARTS's skip limit (at most {cfg.pdarts_skips} skip connections "
                        "per normal cell, on each restricted-space DARTS search's final "
                        "alphas)")
    parts = [
        f"# {cfg.experiment}: DARTS in the enlarged space\n",
        f"DARTS ({order} order, bi-level, softmax per edge) on the restricted and the relaxed "
        f"space, GOLD-NAS on the relaxed space; dataset `{cfg.dataset}`, search preset "
        f"`{cfg.preset}`, {cfg.epochs} search epochs each (GOLD-NAS stops at its FLOPs "
        f"floor), seeds {cfg.seeds}; every architecture trained from scratch for "
        f"{eval_epochs} epochs (preset `{cfg.eval_preset}`, depth: {cfg.eval_depth})."
        + (" Remedy arms: " + "; ".join(remedies) + "." if remedies else "")
        + " Mean ± std over seeds. FLOPs are multiply-adds. Accuracies with inherited "
        "weights (batch norm recalibrated) are on the split named in trials.csv (runs of "
        "layout 2: the scoring split, which no search reads); drop = supernet - derived; "
        "accuracy from scratch: the test split, read once after training. Eigenvalue: the "
        "largest (algebraic) eigenvalue of the Hessian of the search loss w.r.t. the alphas "
        "(DARTS: validation images; GOLD-NAS: its training images), on the same fixed images "
        "each time, first and last measurement. Edge spread: median over edges of the "
        "spread of the mixing weights at the end (0: uniform); choices changed: share of "
        "edges whose strongest op changed since the architecture derived after epoch 0 "
        "(against the initialisation it would count flips of the start's noise). "
        f"Collapse epoch: the first epoch whose derived normal cells' parameter-free share "
        f"exceeds {cfg.collapse_threshold:g} ('collapsed' counts the seeds that did; the mean "
        f"is over them): normal cells only, since reduction cells keep pools by design "
        f"(DARTS V2: 0.25 in its normal cell, 0.625 over both cells). Beside it, the share a "
        f"uniform random cell of the arm's ops is expected to have (3/7 with DARTS's ops, 1/2 "
        f"with {{skip_connect, sep_conv_3x3}}: the relaxed and S2 arms): where it equals the "
        f"threshold, 'collapsed' means more parameter-free than chance, no more. "
        f"Collapse timing: early "
        f"(before the supernet's training accuracy reached {cfg.fit_threshold:g}, or it "
        f"never did), late (at or after), not at all. Surviving gates (GOLD-NAS only): the "
        f"median and the share above {SATURATED:g} of the gates of the ops it kept, at its "
        f"last record: GOLD-NAS's derived network keeps exactly those ops, so with its gates "
        f"near 1 it is its supernet and its drop is near 0 by construction, not as a search "
        f"result. Arms: "
        f"{', '.join(cfg.arms)} (experiments/darts_failure/config.py ARM_TABLE; each run's "
        f"config.yaml records its skip, ops and hp.alpha_budget_steps, and its metrics the "
        f"alpha lr, a_lr).\n",
        table,
        "## Per seed\n",
        per_trial,
    ]
    if missing:
        parts.append("Not finished (left out above): " + ", ".join(missing) + "\n")
    if control is not None and len(control):
        parts += ["## Protocol control: does training from scratch separate cells?\n",
                  "The all-skip cell, DARTS V2 and random cells of each space trained from "
                  "scratch under this experiment's protocol, over the seeds "
                  "(experiments/darts_failure/control.py); read every accuracy from scratch "
                  "above beside it.\n", control_markdown(control)]
    elif cfg.control_cells == 0:
        parts.append("No protocol control in this folder (`--control-cells 0`): the "
                     "accuracies from scratch above are not shown to separate a bad cell from "
                     "a good one.\n")
    parts += _verdict_parts(cfg, trials, control)
    if len(series):
        parts += ["## GOLD-NAS series trained from scratch\n", series_table]
    for stem, title in figures:
        parts.append(f"![{title}]({stem}.png)\n")
    parts.append(f"Rebuild: `nasbench reproduce {cfg.experiment} --report-only --dir "
                 f"{sweep_dir.name}` from its parent folder, or `nasbench figures`.\n")
    return "\n".join(parts)


def _verdict_parts(cfg: ReproduceConfig, trials: pd.DataFrame,
                   control: pd.DataFrame | None) -> list[str]:
    """The report's verdicts (experiments.darts_failure.verdicts): one per DARTS arm, the
    changes of the space compared pair by pair, which of them carries the difference between
    the spaces, and GOLD-NAS against DARTS from scratch beside the protocol control."""
    final = finals(trials)
    labels = dict(zip(final["arm_label"], final["arm"], strict=False))
    threshold = cfg.collapse_threshold
    found = arm_verdicts(trials, threshold, cfg.fit_threshold, labels)
    separated = (control_verdicts(control).get("relaxed", NOT_MEASURED)
                 if control is not None and len(control) else NOT_MEASURED)
    gold = scratch_verdict(trials, separated, labels,
                           f"{cfg.epochs} search epochs, seeds {cfg.seeds}; trained from "
                           "scratch for " + (f"{cfg.eval_epochs} epochs" if cfg.eval_epochs
                                             else f"the {cfg.eval_preset} preset's epochs"))
    found += [gold] if gold is not None else []
    parts = ["## Verdicts\n",
             f"Per DARTS arm: it collapses (observed) when every seed's derived normal cells "
             f"end above {threshold:g} parameter-free ops (3 seeds or more); contradicted "
             f"when no seed does although every supernet passed {cfg.fit_threshold:g} "
             f"training accuracy and trained {PAST_FIT}+ epochs more, and no seed's share "
             f"rose over its last {PAST_FIT} epochs; otherwise not observed at this budget. "
             "The eigenvalue is compared only within a run (end over start).\n"]
    if found:
        parts.append(verdict_markdown(found))
    table = confound_table(trials, threshold, labels)
    if len(table):
        parts += ["### The space's changes, one at a time\n",
                  "Each pair of arms differs in one change only (same data, budget, seeds); "
                  "the difference is paired by seed (an interval from 3 seeds or more).\n",
                  _markdown(table)]
    parts.append(f"**Which change carries the difference between the spaces:** "
                 f"{space_attribution(trials, threshold)}\n")
    shares = share_decomposition(trials)
    if shares:
        parts.append(shares + "\n")
    return parts


__all__ = ["COLUMNS", "INDICATORS", "REPORT", "collect", "summarise",
           "write_report"]
