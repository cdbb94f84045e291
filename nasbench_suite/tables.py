"""Tables of results: mean ± std over seeds, grouped by method (with variant) and space.

Markdown for the docs, LaTeX (booktabs) for papers, CSV (unrounded mean, std and n) for
anything that computes further. Groups are also split by dataset and preset when the
index holds more than one of them, so a table never averages unlike runs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.index import runs

FORMATS = ("markdown", "latex", "csv")
DEFAULT_METRICS = ("acc", "macs", "params", "search_time_s")


@dataclass(frozen=True)
class Display:
    """How a metric is shown: a header with its unit, a scale and decimals."""

    header: str
    scale: float = 1.0
    decimals: int | None = None


DISPLAY: dict[str, Display] = {
    "acc": Display("Acc. (%)", 100, 2),
    "supernet_acc": Display("Supernet acc. (%)", 100, 2),
    "heldout_acc": Display("Held-out acc. (%)", 100, 2),
    "val_acc": Display("Val. acc. (%)", 100, 2),
    "test_acc": Display("Test acc. (%)", 100, 2),
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
}

_KEY_HEADERS = {"label": "Method", "space": "Space", "dataset": "Dataset", "preset": "Preset"}


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
    for extra in ("dataset", "preset"):
        if df[extra].nunique() > 1:
            keys.append(extra)
    return keys


def summarize(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per group: ``n`` runs, and ``<metric>_mean``, ``<metric>_std`` (sample std, ddof 1)."""
    metrics = check_metrics(df, metrics)
    data = runs(df)
    data = data[data["status"] == "finished"]
    keys = group_keys(data)
    grouped = data.groupby(keys, sort=True)
    out = grouped.size().rename("n").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std()
    return out.reset_index()


def _number(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    display = DISPLAY.get(metric, Display(metric))
    scaled = value * display.scale
    if display.decimals is None:
        return f"{scaled:.4g}"
    return f"{scaled:.{display.decimals}f}"


def _cells(stats: pd.DataFrame, metrics: Sequence[str], pm: str) -> tuple[list[str],
                                                                          list[list[str]]]:
    keys = [c for c in stats.columns if c in _KEY_HEADERS]
    heads = [_KEY_HEADERS[k] for k in keys] + ["n"] + [DISPLAY.get(m, Display(m)).header
                                                       for m in metrics]
    rows = []
    for _, rec in stats.iterrows():
        cells = [str(rec[k]) for k in keys] + [str(int(rec["n"]))]
        for metric in metrics:
            mean, std = rec[f"{metric}_mean"], rec[f"{metric}_std"]
            text = _number(mean, metric)
            if not (isinstance(std, float) and math.isnan(std)):
                text += f"{pm}{_number(std, metric)}"
            cells.append(text)
        rows.append(cells)
    return heads, rows


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
          "–": "--"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def make_table(df: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS,
               fmt: str = "markdown") -> str:
    """The table as text in ``fmt`` (markdown, latex or csv)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r}; choose from {', '.join(FORMATS)}")
    stats = summarize(df, metrics)
    if fmt == "csv":
        buf = io.StringIO()
        stats.to_csv(buf, index=False, lineterminator="\n", float_format="%.17g")
        return buf.getvalue()
    if fmt == "markdown":
        heads, rows = _cells(stats, metrics, " ± ")
        align = ["---" if i < len(heads) - len(metrics) - 1 else "---:" for i in
                 range(len(heads))]
        lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    heads, rows = _cells(stats, metrics, r" $\pm$ ")
    n_keys = len(heads) - len(metrics) - 1
    spec = "l" * n_keys + "r" * (len(metrics) + 1)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(_latex_escape(h) for h in heads) + r" \\", r"\midrule"]
    for r in rows:
        cells = [_latex_escape(c) for c in r[:n_keys]] + [c.replace("–", "--")
                                                          for c in r[n_keys:]]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
