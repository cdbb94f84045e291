"""The report of `nasbench reproduce nb201`, from the experiment folder alone.

:func:`write_report` reads the tables (experiments.nb201.tables), writes them as CSVs, draws
the figures (experiments.nb201.plots) with each figure's data beside it, and writes
report.md: (1) the NAS-Bench-201 papers' table of the final cells with the all-skip cell,
the table's best and median and random search; (2) the table's accuracy of each method's
derived cell over the search epochs; (3) its skip and parameter-free shares; (4) the
supernet's training accuracy against RobustDARTS's band; (5) the rank correlation where a
run folder holds one; then the verdicts. Nothing here depends on the clock, the machine or
the order of a folder listing, so the same folder always gives the same bytes (PNG bytes
also depend on matplotlib's version, recorded in build.json).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import manifest_of
from nasbench_suite.experiments.claims.stats import interval
from nasbench_suite.experiments.nb201.config import RANDOM_K_LINES, Nb201Config, random_label
from nasbench_suite.experiments.nb201.tables import GT_COLUMNS, collect
from nasbench_suite.experiments.nb201.verdicts import (
    band_verdict,
    beats_darts,
    collapse_verdict,
    takeover,
)
from nasbench_suite.experiments.verdicts import MIN_SEEDS, Verdict, verdict_markdown
from nasbench_suite.files import atomic_write, write_json

REPORT = "report"
BUILD = "build.json"


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.6g")


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


#: PAD-NAS's recorded cell before its first search is no search result (methods/padnas.py:
#: the encoding's first path until a stage's NSGA-II search has chosen one)
PADNAS_PLACEHOLDER = (
    "PAD-NAS chooses its first cell at the end of its first pruning stage (its first "
    "evolutionary search); until then its recorded cell is the encoding's first path, every "
    "edge's first remaining op, which is the all-skip cell: its line there is a placeholder, "
    "not a collapse.\n")


def equivalent_k(value: float, random: pd.DataFrame) -> float:
    """The fewest random cells whose expected best reaches ``value`` (NaN: more than the
    curve holds; 0: below one random cell's expected accuracy, which "k = 1" would hide)."""
    if value < float(random["expected_best"].iloc[0]):
        return 0.0
    reached = random[random["expected_best"] >= value]
    return float(reached["k"].iloc[0]) if len(reached) else math.nan


def finals(runs: pd.DataFrame, random: pd.DataFrame, confidence: float,
           resamples: int) -> pd.DataFrame:
    """Per arm: seeds, mean and std of each table column, the interval of the CIFAR-10
    validation mean (3+ seeds only), the equivalent random-search k."""
    rows = []
    for (method, arm), group in runs.groupby(["method", "arm"], sort=False):
        row: dict[str, object] = {"method": method, "arm": arm, "seeds": len(group)}
        for column, _ in (*GT_COLUMNS, ("percentile", "")):
            row[f"{column}_mean"] = float(group[column].mean())
            row[f"{column}_std"] = float(group[column].std(ddof=1)) if len(group) > 1 \
                else math.nan
        iv = interval(group["cifar10_valid"].tolist(), confidence, resamples)
        enough = len(group) >= MIN_SEEDS
        row["cifar10_valid_low"] = iv.low if enough else math.nan
        row["cifar10_valid_high"] = iv.high if enough else math.nan
        row["mean"] = row["cifar10_valid_mean"]
        row["random_k"] = equivalent_k(float(row["mean"]), random)
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _k_text(k: float, k_max: int) -> str:
    if math.isnan(k):
        return f">{k_max}"
    return "<1" if k == 0 else f"{k:.0f}"


def papers_table(summary: pd.DataFrame, reference: pd.DataFrame, random: pd.DataFrame,
                 confidence: float) -> str:
    """Section (1): the methods' rows, then the published reference rows."""
    heads = [h for _, h in GT_COLUMNS]
    k_max = int(random["k"].max())
    ci = f"{confidence:.0%} CI, CIFAR-10 valid"
    rows = []
    for _, r in summary.iterrows():
        rows.append({"method": r["arm"], "seeds": str(r["seeds"]),
                     **{h: _pm(r[f"{c}_mean"], r[f"{c}_std"]) for c, h in GT_COLUMNS},
                     "percentile": _pm(r["percentile_mean"], r["percentile_std"]),
                     ci: "–" if math.isnan(r["cifar10_valid_low"]) else
                     f"[{r['cifar10_valid_low']:.2f}, {r['cifar10_valid_high']:.2f}]",
                     "random search equivalent k": _k_text(r["random_k"], k_max)})
    for _, r in reference.iterrows():
        rows.append({"method": r["row"], "seeds": "–",
                     **{h: f"{r[c]:.2f}" for c, h in GT_COLUMNS},
                     "percentile": f"{r['percentile']:.2f}", ci: "–",
                     "random search equivalent k": "–"})
    best = random.set_index("k")["expected_best"]
    for k in RANDOM_K_LINES:
        rows.append({"method": random_label(k), "seeds": "–",
                     heads[0]: f"{best[k]:.2f}", **dict.fromkeys(heads[1:], "–"),
                     "percentile": "–", ci: "–", "random search equivalent k": str(k)})
    return _markdown(pd.DataFrame(rows, columns=["method", "seeds", *heads, "percentile", ci,
                                                 "random search equivalent k"]))


def per_seed_table(runs: pd.DataFrame) -> str:
    frame = pd.DataFrame({
        "method": runs["arm"], "seed": runs["seed"].astype(str), "cell": runs["arch"],
        **{h: runs[c].map("{:.2f}".format) for c, h in GT_COLUMNS},
        "skip share": runs["skip_share"].map("{:.2f}".format),
        "param-free share": runs["param_free_share"].map("{:.2f}".format),
        "epochs run": runs["epochs_run"].astype(str),
        "search (s)": runs["search_time_s"].map("{:.0f}".format)})
    return _markdown(frame)


def train_table(runs: pd.DataFrame, target: float) -> str:
    """Section (4): how far each search's supernet got."""
    frame = pd.DataFrame({
        "method": runs["arm"], "seed": runs["seed"].astype(str),
        "train acc, last epoch": runs["train_acc_end"].map(
            lambda v: "not recorded" if math.isnan(v) else f"{v:.1%}"),
        "best": runs["train_acc_best"].map(
            lambda v: "not recorded" if math.isnan(v) else f"{v:.1%}"),
        f"first epoch >= {target:.0%}": [
            f"{e:.0f}" if not math.isnan(e) else
            f"not reached in {n} epochs" for e, n in zip(runs["target_epoch"],
                                                          runs["epochs_run"], strict=True)]})
    return _markdown(frame)


def rankcorr_table(runs: pd.DataFrame) -> str:
    return _markdown(pd.DataFrame({"method": runs["arm"], "seed": runs["seed"].astype(str),
                                   "rank correlation of the supernet": runs["rankcorr"]}))


def rankcorr_summary(runs: pd.DataFrame) -> str:
    """Per method, over the seeds measured: tau and rho at the last measured stage, and
    what the supernet's top cells are worth in the table (what trusting it would buy)."""
    rows = []
    for _, group in runs.groupby("arm", sort=False):
        measured = group[group["tau_last"].notna()]
        if measured.empty:
            rows.append({"method": group["arm"].iloc[0], "seeds measured": "0",
                         "Kendall tau": "not measured", "Spearman rho": "not measured",
                         "table accuracy of the top 5 (CIFAR-10 valid)": "not measured"})
            continue

        def pm(column: str, frame: pd.DataFrame = measured) -> str:
            return _pm(float(frame[column].mean()), float(frame[column].std(ddof=1))
                       if len(frame) > 1 else math.nan)

        rows.append({"method": measured["arm"].iloc[0], "seeds measured": str(len(measured)),
                     "Kendall tau": pm("tau_last"), "Spearman rho": pm("rho_last"),
                     "table accuracy of the top 5 (CIFAR-10 valid)": pm("top_truth_last")})
    return _markdown(pd.DataFrame(rows))


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def shape_text(runs: pd.DataFrame, dataset: str) -> str:
    """The data and supernet every method shared, from the runs' own configs."""
    first = runs.iloc[0]
    size = "native size" if pd.isna(first["image_size"]) else f"{int(first['image_size'])} px"
    return f"{dataset}, supernet C={int(first['channels'])}, {int(first['layers'])} cells, {size}"


def budget_of(runs: pd.DataFrame, arms: Sequence[str], dataset: str) -> str:
    """The budget of ``arms``: configured epochs (and how many ran), seeds, data and shape."""
    parts = []
    for arm in arms:
        mine = runs[runs["arm"] == arm]
        ran = sorted(set(mine["epochs_run"].astype(int)))
        parts.append(f"{arm}: {int(mine['epochs'].iloc[0])} epochs"
                     + ("" if ran == [int(mine["epochs"].iloc[0])]
                        else f" (ran {'/'.join(map(str, ran))})")
                     + f", {_seeds(len(mine))}")
    return "; ".join(parts) + f"; {shape_text(runs, dataset)}"


def verdicts(runs: pd.DataFrame, epochs: pd.DataFrame, cfg: Nb201Config,
             dataset: str) -> list[Verdict]:
    darts = list(dict.fromkeys(runs.loc[runs["method"] == "darts", "arm"]))
    out = [collapse_verdict(runs, cfg.train_acc_target, budget_of(runs, darts, dataset)),
           band_verdict(epochs, budget_of(runs, darts, dataset))]
    for (method, arm), _ in runs.groupby(["method", "arm"], sort=False):
        if method != "darts" and darts:
            out.append(beats_darts(runs, method, arm, cfg.confidence, cfg.resamples,
                                   budget_of(runs, [arm, *darts], dataset)))
    return [v for v in out if v is not None]


def write_report(sweep_dir: Path, out: Path | None = None) -> list[Path]:
    """report.md, its CSVs and figures (each with the data it plots) from ``sweep_dir``;
    the same folder always gives the same files."""
    import matplotlib

    from nasbench_suite.data.datasets import dataset_slug
    from nasbench_suite.experiments.nb201.plots import band, figures
    from nasbench_suite.report.plots import save_figure

    out = out or sweep_dir / REPORT
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder")
    cfg = Nb201Config.from_manifest(manifest_of(sweep_dir))
    tables = collect(sweep_dir)
    runs, epochs, reference, random = (tables[k] for k in ("runs", "epochs", "reference",
                                                           "random"))
    summary = finals(runs, random, cfg.confidence, cfg.resamples)
    all_skip = float(reference.loc[reference["row"].str.startswith("all-skip"),
                                   "cifar10_valid"].iloc[0])
    gt = band(epochs, "cifar10_valid")
    best = random.set_index("k")["expected_best"]
    lines = pd.DataFrame({"method": "random", "arm": [random_label(k) for k in RANDOM_K_LINES],
                          "epochs_done": np.nan, "mean": [best[k] for k in RANDOM_K_LINES],
                          "min": np.nan, "max": np.nan, "seeds": np.nan})
    lines = pd.concat([lines, pd.DataFrame({
        "method": "table", "arm": ["all-skip cell"], "epochs_done": [np.nan],
        "mean": [all_skip], "min": [np.nan], "max": [np.nan], "seeds": [np.nan]})])
    skip, free = band(epochs, "skip_share"), band(epochs, "param_free_share")
    train = band(epochs[epochs["epoch"] >= 0], "train_acc")
    dataset = dataset_slug(cfg.dataset)
    written: list[Path] = []
    for name, frame in (("runs.csv", runs), ("epochs.csv", epochs),
                        ("summary.csv", summary), ("reference.csv", reference),
                        ("random-search.csv", random),
                        ("truth-over-epochs.csv", pd.concat([gt, lines], ignore_index=True)),
                        ("skip-share-over-epochs.csv", skip),
                        ("param-free-share-over-epochs.csv", free),
                        ("supernet-train-acc.csv", train),
                        ("takeover.csv", takeover(epochs))):
        atomic_write(out / name, _csv(frame))
        written.append(out / name)
    shown = []
    for stem, title, fig in figures(gt, random, all_skip, summary, skip, free, train,
                                    cfg.train_acc_target, dataset):
        written.extend(save_figure(fig, out, stem, ("png",)))
        shown.append((stem, title))
    budget = budget_of(runs, list(dict.fromkeys(runs["arm"])), dataset)
    text = _report_text(cfg, runs, summary, reference, random, shown,
                        verdicts(runs, epochs, cfg, dataset), budget, sweep_dir)
    atomic_write(out / "report.md", text)
    write_json(out / BUILD, {"matplotlib": matplotlib.__version__})
    return [out / "report.md", *written, out / BUILD]


def _report_text(cfg: Nb201Config, runs: pd.DataFrame, summary: pd.DataFrame,
                 reference: pd.DataFrame, random: pd.DataFrame,
                 figures: Sequence[tuple[str, str]], found: list[Verdict], budget: str,
                 sweep_dir: Path) -> str:
    missing = sorted(set(manifest_of(sweep_dir)["trials"]) - set(runs["trial"]))
    order = "second" if cfg.second_order else "first"
    fig = dict(figures)
    verdict_table = verdict_markdown(found)
    parts = [
        f"# {cfg.experiment}: the five methods on NAS-Bench-201\n",
        f"Every method searched the `nb201` space (DARTS {order} order) with the same data "
        f"(`{cfg.dataset}`), splits, supernet shape, seeds {cfg.seeds} and epochs "
        f"(GOLD-NAS: a cap, it stops at its FLOPs floor). Budget: {budget}. No cell was "
        "trained from scratch: every accuracy below is NAS-Bench-201's published one "
        "(200-epoch training of the cell at C=16, N=5, percent), looked up for the cell "
        "each search derived. An epoch whose cell has an edge with tied kept ops "
        "(GOLD-NAS's initialisation) has no cell and is left out of the figures. "
        "CIFAR-10 valid is the benchmark's held-out half of the CIFAR-10 training set (the "
        "column the NB201 papers quote). A cell that keeps several ops on one edge is "
        "scored by the space's rule: per edge the strongest kept op by the recorded "
        "weights. Mean ± std over seeds (std: ddof 1); intervals only with "
        f"{MIN_SEEDS}+ seeds (percentile bootstrap of the mean). Percentile: the share of "
        "the 15,625 cells at or below the cell's CIFAR-10 valid accuracy.\n",
        "## 1. Final cells on the NAS-Bench-201 table\n",
        "Random search: the exact expected best CIFAR-10 valid accuracy of k cells drawn "
        "without replacement; 'random search equivalent k' is the fewest random cells "
        "whose expected best reaches the method's mean ('<1': below the expected accuracy "
        "of one random cell). Table best and median are per column.\n",
        papers_table(summary, reference, random, cfg.confidence),
        "Per seed:\n",
        per_seed_table(runs),
    ]
    if missing:
        parts.append("Not finished (left out above): " + ", ".join(missing) + "\n")
    parts += [
        "## 2. The derived cell over the search\n",
        "Each epoch's cell from the run's arch.jsonl, looked up in the table. Lines: mean "
        "over seeds; bands: the seeds' min-max. Dashed and dotted lines: random search's "
        "expected best of 1, 10 and 100 cells, and the all-skip cell.\n",
        *([PADNAS_PLACEHOLDER] if "padnas" in set(runs["method"]) else []),
        f"![{fig['truth-over-epochs']}](truth-over-epochs.png)\n",
        f"![{fig['random-search']}](random-search.png)\n",
        "## 3. Skip and parameter-free share\n",
        "Shares of the derived cell's kept ops (`none` edges are not ops: the all-`none` "
        "cell has share 0).\n",
        f"![{fig['shares-over-epochs']}](shares-over-epochs.png)\n",
        "## 4. Supernet training accuracy\n",
        f"The issue asks DARTS to run until its supernet's training accuracy passes "
        f"{cfg.train_acc_target:.0%} (RobustDARTS: the skip takeover starts at 84-90%); "
        "where it did not, the table says how far it got. Accuracy on the search's "
        "weight-training split, averaged over the epoch's batches.\n",
        train_table(runs, cfg.train_acc_target),
    ]
    if "supernet-train-acc" in fig:
        parts.append(f"![{fig['supernet-train-acc']}](supernet-train-acc.png)\n")
    parts += [
        "## 5. Rank correlation of the supernet\n",
        "Kendall's tau between the supernet's ranking of cells and the table's, where the "
        "run folder holds one (`nasbench rankcorr`: the same 100 cells for every run, "
        "stratified over the table's accuracy range; inherited weights, batch norm "
        "recalibrated, scoring split); else 'not measured'. Per method, at the last measured "
        "stage (PAD-NAS: its last pruning stage), mean ± std over seeds; 'top 5': the mean "
        "table accuracy of the five cells the supernet ranks highest (a search that trusted "
        "it would pick among them).\n",
        rankcorr_summary(runs),
        "Per seed (PAD-NAS: every pruning stage):\n",
        rankcorr_table(runs),
        "## Verdicts\n",
        verdict_table,
        f"Rebuild: `nasbench reproduce {cfg.experiment} --report-only --dir "
        f"{sweep_dir.resolve().name}` from its parent folder, or `nasbench figures`.\n"]
    return "\n".join(parts)


__all__ = ["BUILD", "REPORT", "equivalent_k", "finals", "write_report"]
