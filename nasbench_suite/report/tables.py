"""Tables of results: mean ± std over seeds, one row per method variant, space and dataset.

Markdown for the docs (pandas ``to_markdown``), LaTeX for papers (pandas' Styler, booktabs
rules), CSV (unrounded mean, std and n) for anything that computes further. A row never
averages unlike runs: the index's ``label`` already separates runs whose resolved settings
differ (seed aside), and dataset and preset split rows when the index holds several. A value
a run did not measure (PAD-NAS's supernet gap, an accuracy from scratch nobody trained) is
shown as missing, never as 0. Accuracy headers name their kind and split.

The Method column names a variant by the few settings that tell it from the method's other
variants (the index's short variant: ``DARTS (epochs=10)``), methods and datasets in words;
every setting that differs among a method's runs goes to a second, legend table below it
(Markdown and LaTeX; the CSV keeps the index's labels), so that the main table fits a
paper's page.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.report.style import dataset_name, method_name
from nasbench_suite.store.index import runs

FORMATS = ("markdown", "latex", "csv")
DEFAULT_METRICS = ("acc", "scratch_acc", "macs", "params", "search_time_s")
MISSING = "–"


@dataclass(frozen=True)
class Display:
    """How a metric is shown: a header with its unit, a scale and decimals."""

    header: str
    scale: float = 1.0
    decimals: int | None = None


DISPLAY: dict[str, Display] = {
    "acc": Display("Acc., inherited (%)", 100, 2),
    "supernet_acc": Display("Supernet acc., inherited (%)", 100, 2),
    "scratch_acc": Display("Test acc., from scratch (%)", 100, 2),
    "supernet_raw_acc_score": Display("Supernet acc., running BN, score split (%)", 100, 2),
    "train_acc": Display("Train acc. (%)", 100, 2),
    "gap": Display("Inherit gap (pp)", 100, 2),
    "macs": Display("FLOPs (M MACs)", 1e-6, 2),
    "derived_macs": Display("FLOPs (M MACs)", 1e-6, 2),
    "flops": Display("FLOPs (M, counter)", 1e-6, 2),
    "supernet_macs": Display("Supernet FLOPs (M MACs)", 1e-6, 2),
    "params": Display("Params (M)", 1e-6, 3),
    "derived_params": Display("Params (M)", 1e-6, 3),
    "param_free_share": Display("Param.-free ops (%)", 100, 1),
    "search_time_s": Display("Search (s)", 1, 1),
    "epochs_run": Display("Epochs", 1, 0),
    "alpha_move_median": Display("Alpha move (median)", 1, 3),
    "edge_spread_median": Display("Edge spread (median)", 1, 3),
    "choice_changed_share": Display("Choices changed (%)", 100, 1),
    # the published table's accuracies (already percent) of the cell the run derived
    "gt_cifar10_valid": Display("CIFAR-10 valid. acc., table (%)", 1, 2),
    "gt_cifar10_test": Display("CIFAR-10 test acc., table (%)", 1, 2),
    "gt_cifar100_test": Display("CIFAR-100 test acc., table (%)", 1, 2),
    "gt_imagenet16_test": Display("ImageNet16-120 test acc., table (%)", 1, 2),
    "gt_percentile": Display("Table percentile", 1, 1),
}
#: accuracies with inherited weights: their header names the split they were measured on
_SPLIT_METRICS = ("acc", "supernet_acc", "gap")

_KEY_HEADERS = {"label": "Method", "space": "Space", "dataset": "Dataset", "preset": "Preset",
                "acc_split": "Split"}


def numeric_metrics(df: pd.DataFrame) -> list[str]:
    """The columns a table can show: numeric values of the run rows."""
    data = runs(df)
    return sorted(c for c in data.columns
                  if c not in ("seed", "point") and pd.api.types.is_numeric_dtype(data[c])
                  and not pd.api.types.is_bool_dtype(data[c]))


def check_metrics(df: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    if not metrics:
        raise UsageError("give at least one metric")
    known = numeric_metrics(df)
    for metric in metrics:
        if metric not in known:
            raise UsageError(f"unknown metric {metric!r}; choose from {', '.join(known)}")
    return list(metrics)


def group_keys(df: pd.DataFrame) -> list[str]:
    keys = ["label", "space"]
    for extra in ("dataset", "preset", "acc_split"):
        if extra in df.columns and df[extra].nunique(dropna=False) > 1:
            keys.append(extra)
    return keys


def summarize(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per group: ``n`` runs, and ``<metric>_mean``, ``<metric>_std`` (sample std, ddof 1);
    NaN where no run of the group measured the metric."""
    metrics = check_metrics(df, metrics)
    data = runs(df)
    data = data[data["status"] == "finished"]
    keys = group_keys(data)
    grouped = data.groupby(keys, sort=True, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for column in ("method", "variant"):  # one value per group: the label holds both
        if column in data:
            out[column] = grouped[column].first()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std()
    return out.reset_index()


def _number(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    display = DISPLAY.get(metric, Display(metric))
    scaled = value * display.scale
    if display.decimals is None:
        return f"{scaled:.4g}"
    return f"{scaled:.{display.decimals}f}"


def _header(metric: str, split: str | None) -> str:
    header = DISPLAY.get(metric, Display(metric)).header
    if metric in _SPLIT_METRICS and split:
        header = header.replace(" (", f", {split} split (", 1) if " (" in header else header
    return header


def method_cell(label: str, method: str | None) -> str:
    """The index's label (``darts (epochs=10)``) with the method named as its paper does:
    ``DARTS (epochs=10)``."""
    if method and isinstance(method, str) and label.startswith(method):
        return method_name(method) + label[len(method):]
    return label


def _key_cells(stats: pd.DataFrame, key: str) -> list[str]:
    if key == "label":
        methods = stats["method"] if "method" in stats else [None] * len(stats)
        return [method_cell(str(lab), m) for lab, m in zip(stats["label"], methods,
                                                           strict=True)]
    if key == "dataset":
        return [dataset_name(str(d)) for d in stats[key]]
    return list(stats[key].astype(str))


def display_frame(stats: pd.DataFrame, metrics: Sequence[str], pm: str,
                  split: str | None) -> pd.DataFrame:
    """Text cells: the key columns, n, and mean ± std per metric."""
    keys = [c for c in stats.columns if c in _KEY_HEADERS]
    table = pd.DataFrame({_KEY_HEADERS[k]: _key_cells(stats, k) for k in keys})
    table["n"] = stats["n"].astype(int).astype(str)
    for metric in metrics:
        means, stds = stats[f"{metric}_mean"], stats[f"{metric}_std"]
        table[_header(metric, split)] = [
            _number(m, metric) + ("" if pd.isna(s) or pd.isna(m) else f"{pm}{_number(s, metric)}")
            for m, s in zip(means, stds, strict=True)]
    return table


def legend_frame(stats: pd.DataFrame) -> pd.DataFrame:
    """The legend of the Method column: per variant row, every setting that differs among
    its method's runs (the index's full variant); empty where no method has variants."""
    if "variant" not in stats or not (stats["variant"].fillna("") != "").any():
        return pd.DataFrame()
    rows = stats[stats["variant"].fillna("") != ""]
    keys = [c for c in rows.columns if c in _KEY_HEADERS]
    table = pd.DataFrame({_KEY_HEADERS[k]: _key_cells(rows, k) for k in keys})
    table["Settings that differ among the method's runs"] = list(rows["variant"])
    return table.drop_duplicates()


_LEGEND_TITLE = "Variants: the settings that differ among each method's runs"


def make_table(df: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS,
               fmt: str = "markdown") -> str:
    """The table as text in ``fmt`` (markdown, latex or csv). Default metrics that no run
    measured (all missing) are left out; asked-for ones are shown missing."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r}; choose from {', '.join(FORMATS)}")
    if tuple(metrics) == DEFAULT_METRICS:
        data = runs(df)
        metrics = [m for m in metrics if m in data.columns and data[m].notna().any()]
    stats = summarize(df, metrics)
    if fmt == "csv":
        buf = io.StringIO()
        stats.drop(columns=["method", "variant"], errors="ignore").to_csv(
            buf, index=False, lineterminator="\n", float_format="%.17g")
        return buf.getvalue()
    splits = runs(df)["acc_split"].dropna().unique() if "acc_split" in df.columns else []
    split = str(splits[0]) if len(splits) == 1 else None
    legend = legend_frame(stats)
    if fmt == "markdown":
        table = display_frame(stats, metrics, " ± ", split)
        align = ["left"] * (len(table.columns) - len(metrics) - 1) + ["right"] * (
            len(metrics) + 1)
        text = table.to_markdown(index=False, colalign=align, disable_numparse=True) + "\n"
        if not legend.empty:
            text += f"\n{_LEGEND_TITLE}:\n\n" + legend.to_markdown(
                index=False, disable_numparse=True) + "\n"
        return text
    table = display_frame(stats, metrics, r" $\pm$ ", split)
    table = table.map(lambda c: c.replace(MISSING, "--"))
    n_keys = len(table.columns) - len(metrics) - 1
    styler = table.style.hide(axis="index").format_index(escape="latex", axis=1)
    styler = styler.format(escape=None, subset=list(table.columns[n_keys:]))
    styler = styler.format(escape="latex", subset=list(table.columns[:n_keys]))
    text = styler.to_latex(hrules=True, column_format="l" * n_keys + "r" * (len(metrics) + 1))
    if not legend.empty:
        # the settings wrap in a paragraph column: a list of nine settings fits a page
        legend_style = legend.style.hide(axis="index").format_index(escape="latex", axis=1)
        legend_style = legend_style.format(escape="latex")
        text += f"\n% {_LEGEND_TITLE}\n" + legend_style.to_latex(
            hrules=True, column_format="l" * (len(legend.columns) - 1) + "p{0.5\\linewidth}")
    return text
