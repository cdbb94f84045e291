"""The report of `nasbench reproduce claims`, from the experiment folder alone.

:func:`collect` reads the run folders, their trainings from scratch and PAD-NAS's
rankcorr.json into one table per claim; :func:`verdicts` decides each claim from bootstrap
intervals over seeds (nasbench_suite.experiments.claims.stats) by the rules in :data:`RULES`;
:func:`write_report` writes report/: report.md (one row per claim), claims.csv, the data
tables and the figures (experiments.claims.plots). The same folder gives the same files.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import manifest_of
from nasbench_suite.experiments.claims.config import ClaimsConfig, resolve_darts_failure
from nasbench_suite.experiments.claims.stats import Interval, interval, paired
from nasbench_suite.experiments.verdicts import CONTRADICTED, MIN_SEEDS, NOT_OBSERVED, OBSERVED
from nasbench_suite.files import atomic_write, write_json
from nasbench_suite.store.runfolder import FINISHED, RunFolder

REPORT = "report"

#: the paper's statement and number, per claim
PAPERS = {
    "edas": "EDAS (Hong et al. 2019): pruning the supernet to the derived network costs no "
            "accuracy, where DARTS's drops towards chance.",
    "padnas": "PAD-NAS (Xia et al. 2020): Kendall tau between one-shot and stand-alone "
              "accuracy rises with each pruning stage: 0.498, 0.745, 0.888 (M = 2, 3, 4; 30 "
              "architectures).",
    "nse": "NSE (Ci et al. 2021): the best architecture at the cost budget improves round "
           "over round (ImageNet: 77.3% top-1 at 333M FLOPs at the end).",
    "gold": "GOLD-NAS (Bi et al. 2020): one search gives a Pareto series of architectures "
            "(CIFAR-10: 2.99% error at 1.58M params).",
    "darts-relaxed": "GOLD-NAS (Bi et al. 2020): existing differentiable methods (DARTS) "
                     "fail dramatically in the enlarged (relaxed) space.",
}
#: how each verdict is decided (written into the report as they are applied)
RULES = {
    "edas": "d = DARTS gap - EDAS gap per seed (gap = supernet as searched - derived network, "
            "inherited weights, batch norm recalibrated, scoring split; same space, seeds and "
            "epochs). Observed if the CI of d lies above 0 and the CI of EDAS's gap lies below "
            "the tolerance; contradicted if the CI of d lies at or below 0, or EDAS's gap CI "
            "lies above the tolerance; otherwise not observed at this budget.",
    "padnas": "d = tau(last stage) - tau(first stage) per seed (Kendall tau over the same "
              "fixed architectures). Observed if the CI of d lies above 0; contradicted if it "
              "lies at or below 0; otherwise not observed at this budget.",
    "nse": "d = accuracy from scratch of the last round's best-at-budget architecture - the "
           "first round's, per seed (one short schedule for all). Observed if the CI of d "
           "lies above 0; contradicted if it lies at or below 0; otherwise not observed at "
           "this budget. Also shown: in how many seeds the accuracy never decreased from "
           "round to round.",
    "gold": "n = recorded architectures per run. Observed if the CI of n lies at or above 2 "
            "and in every run no trained point is dominated by another (more accurate from "
            "scratch and not dearer); contradicted if the CI of n lies below 2, or in every "
            "run some point is dominated; otherwise not observed at this budget. The paper's "
            "2.99% is at 600 epochs, C=36: out of reach at a CPU budget.",
    "darts-relaxed": "From a darts-failure folder, per seed: s = GOLD-NAS's accuracy from "
                     "scratch - DARTS's (relaxed space), g = DARTS's drop - GOLD-NAS's "
                     "(inherited weights). Observed if the CIs of s and g lie above 0; "
                     "contradicted if the CI of s lies at or below 0; otherwise not observed "
                     "at this budget.",
}
TITLES = {"edas": "EDAS gap vs DARTS gap", "padnas": "PAD-NAS tau per stage",
          "nse": "NSE best-at-budget per round", "gold": "GOLD-NAS Pareto series",
          "darts-relaxed": "DARTS in the relaxed space"}


@dataclass(frozen=True)
class Row:
    """One claim of the report."""

    claim: str
    paper: str
    measured: str
    verdict: str
    why: str


def nse_rounds(run: RunFolder) -> list[tuple[int, Any]]:
    """(round, genotype) of each NSE round's best architecture at the budget."""
    from nasbench_suite.spaces import Genotype

    return sorted((int(p["round"]), Genotype.from_dict(p["genotype"])) for p in run.series()
                  if p.get("best_at_budget"))


def settings(sweep_dir: Path) -> tuple[ClaimsConfig, list[str]]:
    manifest = manifest_of(sweep_dir)
    return ClaimsConfig.from_manifest(manifest), list(manifest["trials"])


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def collect(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """One table per claim (module docstring)."""
    cfg, trials = settings(sweep_dir)
    gaps, taus, nse, gold = [], [], [], []
    for trial in trials:
        run = RunFolder(sweep_dir / trial)
        if run.status() != FINISHED:
            continue
        config, summary = run.config_dict(), run.summary()
        method, seed = config["method"], int(config["seed"])
        if method in ("darts", "edas"):
            moves = [e for e in run.events() if e.get("kind") == "edge_moves"]
            inh = summary.inherited
            gaps.append({"method": method, "seed": seed, "supernet_acc": _num(inh.supernet_acc),
                         "derived_acc": _num(inh.derived_acc), "gap": _num(inh.gap),
                         "median_alpha_move": moves[-1]["median_move"] if moves else math.nan,
                         "init_spread": moves[-1]["init_spread"] if moves else math.nan,
                         "never_changed": moves[-1]["never_changed"] if moves else math.nan,
                         "search_time_s": summary.search_time_s})
        elif method == "padnas" and run.has_rankcorr():
            rc = run.rankcorr()
            for i, stage in enumerate(rc.stages, 1):
                taus.append({"seed": seed, "stage": i, "tau": _num(rc.tau[stage]),
                             "p_value": _num(rc.p_value.get(stage)), "archs": rc.archs,
                             "eval_epochs": rc.eval_epochs})
        elif method == "nse":
            evaluations = run.evaluations()
            points = {int(p["round"]): p for p in run.series() if p.get("best_at_budget")}
            target = next((e["target_macs"] for e in run.events() if e.get("kind") == "round"),
                          math.nan)
            shares = [m["mac_penalty_share"] for m in run.metrics()
                      if m.get("mac_penalty_share") is not None]
            for r, _ in nse_rounds(run):
                trained = evaluations.get(f"round{r}")
                nse.append({"seed": seed, "round": r, "macs": points[r]["macs"],
                            "target_macs": target, "val_acc": points[r]["val_acc"],
                            "inherited_acc": points[r]["acc"],
                            "scratch_acc": trained.test_acc if trained else math.nan,
                            "penalty_share": sum(shares) / len(shares) if shares else math.nan})
        elif method == "gold":
            evaluations = run.evaluations()
            for n, point in enumerate(run.series()):
                trained = evaluations.get(f"point{point.get('index', n)}")
                gold.append({"seed": seed, "point": point.get("index", n),
                             "epoch": point.get("epoch"), "macs": point["macs"],
                             "params": point["params"], "inherited_acc": _num(point.get("acc")),
                             "scratch_acc": trained.test_acc if trained else math.nan})
            if not run.series():
                gold.append({"seed": seed, "point": math.nan, "epoch": math.nan,
                             "macs": math.nan, "params": math.nan, "inherited_acc": math.nan,
                             "scratch_acc": math.nan})
    return {"gaps": pd.DataFrame(gaps), "rankcorr": pd.DataFrame(taus),
            "nse": pd.DataFrame(nse), "gold": pd.DataFrame(gold),
            "darts_failure": darts_failure_rows(resolve_darts_failure(cfg, sweep_dir))}


def darts_failure_rows(folder: Path | None) -> pd.DataFrame:
    """DARTS (relaxed) and GOLD-NAS rows of a darts-failure folder (none: empty)."""
    from nasbench_suite.experiments.darts_failure.report import collect as collect_failure

    if folder is None or not folder.is_dir():
        return pd.DataFrame()
    trials = collect_failure(folder)["trials"]
    keep = trials[(trials["space"] == "relaxed") & (trials["label"] == "final")
                  & trials["arm"].isin(["DARTS (1st order), relaxed", "DARTS (2nd order), relaxed",
                                        "GOLD-NAS, relaxed"])]
    return keep[["arm", "method", "seed", "drop", "scratch_acc"]].reset_index(drop=True)


def _by_seed(frame: pd.DataFrame, column: str, **where: Any) -> dict[int, float]:
    if frame.empty:
        return {}
    sel = frame
    for key, value in where.items():
        sel = sel[sel[key] == value]
    return {int(s): float(v) for s, v in zip(sel["seed"], sel[column], strict=True)}


def _decide(up: bool, down: bool, reason: str) -> tuple[str, str]:
    if up:
        return OBSERVED, ""
    if down:
        return CONTRADICTED, ""
    return NOT_OBSERVED, reason


def _why_open(i: Interval, what: str) -> str:
    if i.n < MIN_SEEDS:
        return f"{what}: {i.n} seed(s), fewer than {MIN_SEEDS}: no interval"
    return f"the CI of {what} [{i.low:.3g}, {i.high:.3g}] straddles the threshold"


def verdicts(tables: dict[str, pd.DataFrame], cfg: ClaimsConfig,
             source: Path | None = None) -> list[Row]:
    """One :class:`Row` per claim, decided by :data:`RULES`."""
    ci = {"confidence": cfg.confidence, "resamples": cfg.resamples}
    pct = f"{cfg.confidence:.0%} CI"
    rows = []
    # EDAS
    gaps = tables["gaps"]
    darts, edas = _by_seed(gaps, "gap", method="darts"), _by_seed(gaps, "gap", method="edas")
    d, e = interval(paired(darts, edas), **ci), interval(list(edas.values()), **ci)
    verdict, why = _decide(d.above(0) and e.below(cfg.gap_tolerance),
                           d.at_or_below(0) or e.above(cfg.gap_tolerance),
                           _why_open(d, "DARTS gap - EDAS gap") if not d.above(0) else
                           _why_open(e, f"EDAS's gap vs the tolerance {cfg.gap_tolerance}"))
    rows.append(Row("edas", PAPERS["edas"],
                    f"EDAS gap {e.text(confidence=cfg.confidence)}; DARTS gap "
                    f"{interval(list(darts.values()), **ci).text(confidence=cfg.confidence)}; "
                    f"DARTS - EDAS {d.text(confidence=cfg.confidence)}", verdict,
                    why or f"{pct}s over {d.n} paired seeds"))
    # PAD-NAS
    rc = tables["rankcorr"]
    if rc.empty:
        rows.append(Row("padnas", PAPERS["padnas"], "no rank correlation measured",
                        NOT_OBSERVED, "no finished PAD-NAS run with its trainings from "
                                        "scratch"))
    else:
        stages = sorted(set(rc["stage"]))
        per_stage = "; ".join(f"stage {s}: {interval(list(_by_seed(rc, 'tau', stage=s).values()), **ci).text(confidence=cfg.confidence)}"  # noqa: E501
                              for s in stages)
        diff = interval(paired(_by_seed(rc, "tau", stage=stages[-1]),
                               _by_seed(rc, "tau", stage=stages[0])), **ci)
        verdict, why = _decide(len(stages) > 1 and diff.above(0),
                               len(stages) > 1 and diff.at_or_below(0),
                               "one stage only" if len(stages) < 2 else
                               _why_open(diff, "tau(last) - tau(first)"))
        rows.append(Row("padnas", PAPERS["padnas"],
                        f"tau {per_stage}; last - first {diff.text(confidence=cfg.confidence)} "
                        f"({int(rc['archs'].iloc[0])} architectures, "
                        f"{int(rc['eval_epochs'].iloc[0])} epochs from scratch)",
                        verdict, why or f"{pct} over {diff.n} seeds"))
    rows.append(_nse_row(tables["nse"], cfg, ci))
    rows.append(_gold_row(tables["gold"], cfg, ci))
    rows.append(_darts_relaxed_row(tables["darts_failure"], cfg, ci, source))
    return rows


def _nse_row(nse: pd.DataFrame, cfg: ClaimsConfig, ci: dict[str, Any]) -> Row:
    trained = nse.dropna(subset=["scratch_acc"]) if not nse.empty else nse
    if trained.empty:
        return Row("nse", PAPERS["nse"], "no round trained from scratch", NOT_OBSERVED,
                   "no finished NSE run with a best-at-budget architecture trained")
    firsts, lasts, rising = {}, {}, []
    for seed, group in trained.groupby("seed"):
        accs = list(group.sort_values("round")["scratch_acc"])
        if len(accs) >= 2:
            firsts[int(seed)], lasts[int(seed)] = accs[0], accs[-1]
            rising.append(all(b >= a for a, b in itertools.pairwise(accs)))
    by_round = "; ".join(
        f"round {r + 1}: {interval(list(g['scratch_acc']), **ci).text(confidence=cfg.confidence)}"
        for r, g in trained.groupby("round"))
    diff = interval(paired(lasts, firsts), **ci)
    verdict, why = _decide(diff.above(0), diff.at_or_below(0),
                           _why_open(diff, "last - first round"))
    return Row("nse", PAPERS["nse"],
               f"accuracy from scratch, {by_round}; last - first "
               f"{diff.text(confidence=cfg.confidence)}; non-decreasing in {sum(rising)} of "
               f"{len(rising)} seeds", verdict, why or f"{cfg.confidence:.0%} CI over "
                                                       f"{diff.n} seeds")


def _dominated(group: pd.DataFrame) -> bool:
    """Whether some trained point is beaten by another: more accurate and not dearer."""
    pts = list(zip(group["macs"], group["scratch_acc"], strict=True))
    return any(m2 <= m1 and a2 > a1 for m1, a1 in pts for m2, a2 in pts)


def _gold_row(gold: pd.DataFrame, cfg: ClaimsConfig, ci: dict[str, Any]) -> Row:
    if gold.empty:
        return Row("gold", PAPERS["gold"], "no GOLD-NAS run finished", NOT_OBSERVED,
                   "no finished GOLD-NAS run")
    counts = {int(s): float(g["point"].notna().sum()) for s, g in gold.groupby("seed")}
    n = interval(list(counts.values()), **ci)
    trained = gold.dropna(subset=["scratch_acc"])
    dominated = [_dominated(g) for _, g in trained.groupby("seed") if len(g) >= 2]
    points = "; ".join(f"{m / 1e6:.3g} M mult-adds: {a:.3f}" for m, a in
                       zip(trained["macs"], trained["scratch_acc"], strict=True))
    all_trained = len(dominated) == len(counts) and all(c >= 2 for c in counts.values())
    verdict, why = _decide(n.defined and n.low >= 2 and all_trained and not any(dominated),
                           n.below(2) or (bool(dominated) and all(dominated)
                                          and len(dominated) == len(counts)),
                           _why_open(n, "points per run") if not (n.defined and n.low >= 2)
                           else "some runs' points are not all trained, or some but not "
                                "every run has a dominated point")
    return Row("gold", PAPERS["gold"],
               f"points per run {n.text('{:.2f}', cfg.confidence)}; accuracy from scratch by "
               f"MACs: {points or 'none trained'}", verdict,
               why or f"{cfg.confidence:.0%} CI over {n.n} seeds")


def _darts_relaxed_row(rows: pd.DataFrame, cfg: ClaimsConfig, ci: dict[str, Any],
                       source: Path | None) -> Row:
    if rows.empty:
        where = cfg.darts_failure or "darts-failure-long-* beside this experiment"
        return Row("darts-relaxed", PAPERS["darts-relaxed"], "not run here", NOT_OBSERVED,
                   f"no darts-failure experiment folder ({where} not found); run `nasbench "
                   "reproduce darts-failure` at a budget where DARTS can collapse and give "
                   "--darts-failure DIR")
    darts = rows[rows["method"] == "darts"]
    gold = rows[rows["method"] == "gold"]
    s = interval(paired(_by_seed(gold, "scratch_acc"), _by_seed(darts, "scratch_acc")), **ci)
    g = interval(paired(_by_seed(darts, "drop"), _by_seed(gold, "drop")), **ci)
    verdict, why = _decide(s.above(0) and g.above(0), s.at_or_below(0),
                           _why_open(s, "GOLD-NAS - DARTS from scratch") if not s.above(0)
                           else _why_open(g, "DARTS drop - GOLD-NAS drop"))
    return Row("darts-relaxed", PAPERS["darts-relaxed"],
               f"from {source.name if source else '?'}: GOLD-NAS - DARTS accuracy from scratch "
               f"{s.text(confidence=cfg.confidence)}; DARTS drop - GOLD-NAS drop "
               f"{g.text(confidence=cfg.confidence)}", verdict,
               why or f"{cfg.confidence:.0%} CIs over {s.n} paired seeds")


def write_report(sweep_dir: Path, out: Path | None = None) -> list[Path]:
    """report.md, claims.csv, the data and figures from ``sweep_dir``; the same folder
    always gives the same files."""
    from nasbench_suite.experiments.claims.plots import figures
    from nasbench_suite.report.plots import BUILD, drawing_build, save_figure

    out = out or sweep_dir / REPORT
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder")
    cfg, trials = settings(sweep_dir)
    tables = collect(sweep_dir)
    rows = verdicts(tables, cfg, resolve_darts_failure(cfg, sweep_dir))
    written: list[Path] = []
    claims = pd.DataFrame([r.__dict__ for r in rows])
    for name, frame in (("claims.csv", claims), *((f"{k}.csv", v) for k, v in tables.items())):
        atomic_write(out / name, frame.to_csv(index=False, float_format="%.6g"))
        written.append(out / name)
    shown = []
    for stem, title, fig in figures(tables):
        written.extend(save_figure(fig, out, stem, ("png",)))
        shown.append((stem, title))
    finished = sum(RunFolder(sweep_dir / t).status() == FINISHED for t in trials)
    atomic_write(out / "report.md", report_text(cfg, rows, shown, sweep_dir, finished,
                                                len(trials)))
    write_json(out / BUILD, drawing_build())
    return [out / "report.md", *written, out / BUILD]


def report_text(cfg: ClaimsConfig, rows: list[Row], shown: list[tuple[str, str]],
                sweep_dir: Path, finished: int, total: int) -> str:
    table = [f"| claim | paper | measured here (mean ± std and CI from {MIN_SEEDS} seeds or more, "
             "else the seeds' values) | verdict |",
             "|---|---|---|---|"]
    for r in rows:
        table.append(f"| {TITLES[r.claim]} | {r.paper} | {r.measured} | **{r.verdict}**"
                     f"{': ' + r.why if r.verdict == NOT_OBSERVED else ''} |")
    pad = cfg.padnas_epochs or "the preset's"
    parts = [
        "# claims: each paper's headline claim at one budget\n",
        f"Dataset `{cfg.dataset}`, search preset `{cfg.preset}` "
        f"({', '.join(f'{k}={v}' for k, v in cfg.search_set.items()) or 'no overrides'}), "
        f"seeds {cfg.seeds}; {cfg.epochs} search epochs for DARTS (1st order) and EDAS "
        f"(restricted space), NSE (restricted) and GOLD-NAS (relaxed, a cap); PAD-NAS "
        f"(restricted) {pad} epochs over its stages. Trainings from scratch: {cfg.eval_epochs} "
        f"epochs, the mini evaluation preset at the search's image size and depth "
        f"({', '.join(f'{k}={v}' for k, v in cfg.eval_set.items()) or 'no overrides'}), the "
        f"same for every architecture; the test split is read once. {finished} of {total} "
        "searches finished.\n",
        "\n".join(table) + "\n",
        "## How each verdict is decided\n",
        f"Intervals: percentile bootstrap of the mean over seeds (scipy.stats.bootstrap, "
        f"{cfg.resamples} resamples, {cfg.confidence:.0%}), from {MIN_SEEDS} seeds or more "
        "only: with two seeds a percentile interval is just the two values, so fewer seeds "
        "show their values and every claim measured on them is 'not observed at this "
        "budget'. With three seeds the interval spans the values seen, so 'observed' needs "
        "every seed to agree. No verdict is taken from a mean alone. Words: observed, "
        "contradicted (the opposite measured), not observed at this budget. EDAS's "
        "tolerance: "
        f"{cfg.gap_tolerance:g}.\n",
        *[f"- **{TITLES[c]}**: {RULES[c]}" for c in RULES],
        "",
    ]
    parts += [f"![{title}]({stem}.png)\n" for stem, title in shown]
    parts.append("Data: claims.csv (this table), gaps.csv, rankcorr.csv, nse.csv, gold.csv, "
                 "darts_failure.csv. Rebuild: `nasbench reproduce claims --report-only --dir "
                 f"{sweep_dir.name}` from its parent folder, or `nasbench figures`.\n")
    return "\n".join(parts)
