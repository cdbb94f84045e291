"""`nasbench reproduce darts-failure`: DARTS in the enlarged space, measured.

The GOLD-NAS paper says differentiable methods fail in the relaxed space but gives no
settings. This experiment runs DARTS (softmax,
bi-level, first order unless ``second_order``) on the restricted and on the relaxed space and
GOLD-NAS on the relaxed space, over several seeds, with the same data and the same epoch
budget (GOLD-NAS stops earlier when it passes its FLOPs floor), as one sweep. Every derived
architecture is then trained from scratch, and a report gathers, per method and space:

* the share of parameter-free ops in the derived cells, FLOPs (multiply-adds) and params;
* the supernet-to-derived accuracy drop with inherited weights (batch norm recalibrated);
* the accuracy trained from scratch (test split read once, after training);
* the dominant eigenvalue of the Hessian of the loss w.r.t. the alphas over epochs
  (RobustDARTS; DARTS: validation loss, GOLD-NAS: its one-level training loss).

Everything resumes: finished trials and evaluations are skipped, interrupted trials resume
from their checkpoints, and an interrupted evaluation starts again. The folder::

    <out>/<name>/
      sweep.yaml, trials.csv, <trial>/    the sweep (nasbench_suite.sweep)
      reproduce.json                      this experiment's resolved settings
      evals/<trial>/<label>/              one training from scratch (result.json)
      report/                             report.md, trials.csv, summary.csv, figures + data
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.files import atomic_write, read_json, write_json
from nasbench_suite.runfolder import FINISHED, RunFolder, inside
from nasbench_suite.sweep import Resources, run_sweep
from nasbench_suite.sweep_spec import SweepSpec, check_name, expand

EXPERIMENTS = ("darts-failure",)
MANIFEST = "reproduce.json"
EVALS = "evals"
REPORT = "report"
BUILD = "build.json"
#: the methods and spaces of the experiment, in report order
ARMS = (("darts", "restricted"), ("darts", "relaxed"), ("gold", "relaxed"))
#: report columns: (column, header, how to print it)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("param_free_share", "param-free share", "{:.2f}"),
    ("mmacs", "MFLOPs (mult-adds)", "{:.2f}"),
    ("mparams", "params (M)", "{:.4f}"),
    ("supernet_acc", "supernet acc", "{:.3f}"),
    ("inherited_acc", "derived acc (inherited)", "{:.3f}"),
    ("drop", "drop", "{:.3f}"),
    ("scratch_acc", "acc from scratch", "{:.3f}"),
    ("eig_start", "eigenvalue start", "{:.3g}"),
    ("eig_end", "eigenvalue end", "{:.3g}"),
    ("search_time_s", "search (s)", "{:.0f}"),
)


@dataclass
class ReproduceConfig:
    """The experiment's knobs; search and evaluation details come from their presets and
    ``search_set`` / ``eval_set`` overrides."""

    experiment: str = "darts-failure"
    name: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    preset: str = "mini"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    #: search epochs of every method (GOLD-NAS: a cap; it stops at its floor)
    epochs: int = 20
    second_order: bool = False
    hessian_every: int = 2
    hessian_iters: int = 20
    eval_preset: str = "mini"
    eval_epochs: int | None = None
    #: "searched": train every architecture at its searched depth (equal terms across the
    #: spaces); "preset": the evaluation preset's depth (DARTS: 20 cells for the restricted
    #: space)
    eval_depth: str = "searched"
    #: evaluate every recorded architecture of the GOLD-NAS series of these seeds
    series_seeds: list[int] = field(default_factory=list)
    search_set: dict[str, Any] = field(default_factory=dict)
    eval_set: dict[str, Any] = field(default_factory=dict)
    out: str = "results/reproduce"
    threads: int | None = None
    device: str | None = None
    skip_eval: bool = False

    @property
    def sweep_name(self) -> str:
        from nasbench_suite.data import dataset_slug

        return self.name or f"{self.experiment}-{dataset_slug(self.dataset)}"

    def check_names(self) -> None:
        if self.name is not None:
            check_name(self.name, "--name")

    def validate(self) -> None:
        if self.experiment not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {self.experiment!r}; choose from "
                             f"{', '.join(EXPERIMENTS)}")
        if self.epochs <= 0:
            raise UsageError(f"epochs must be a positive integer, got {self.epochs}")
        if self.eval_epochs is not None and self.eval_epochs <= 0:
            raise UsageError(f"eval epochs must be a positive integer, got {self.eval_epochs}")
        if self.hessian_every < 0:
            raise UsageError(f"hessian-every must be 0 or more, got {self.hessian_every}")
        if not self.seeds:
            raise UsageError("give at least one seed")
        if self.eval_depth not in ("searched", "preset"):
            raise UsageError(f"eval depth must be 'searched' or 'preset', got "
                             f"{self.eval_depth!r}")
        missing = sorted(set(self.series_seeds) - set(self.seeds))
        if missing:
            raise UsageError(f"series seed {missing[0]} is not among the seeds")
        self.check_names()
        if any(s < 0 or s >= 2**32 for s in self.seeds):
            raise UsageError("seeds must be in [0, 2^32)")


# -- the sweep ---------------------------------------------------------------------------------
def sweep_spec(cfg: ReproduceConfig) -> SweepSpec:
    """DARTS on both spaces and GOLD-NAS on the relaxed one, the same epochs and data."""
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs,
                             "hessian_every": cfg.hessian_every,
                             "hessian_iters": cfg.hessian_iters, **cfg.search_set}
    for key in ("data_dir", "threads", "device"):
        if getattr(cfg, key) is not None:
            fixed[key] = getattr(cfg, key)
    return SweepSpec(
        name=cfg.sweep_name,
        methods={"darts": {"hp.order": 2 if cfg.second_order else 1}, "gold": {}},
        method_spaces={"darts": ["restricted", "relaxed"], "gold": ["relaxed"]},
        spaces=["restricted", "relaxed"], datasets=[cfg.dataset], seeds=list(cfg.seeds),
        fixed=fixed)


def run_reproduce(cfg: ReproduceConfig, resources: Resources | None = None,
                  quiet: bool = False, log: Callable[[str], None] = print) -> Path:
    """Sweep, evaluate from scratch, write the report; returns the experiment folder."""
    cfg.validate()
    spec = sweep_spec(cfg)
    sweep_dir = (Path(cfg.out) / spec.name).resolve()
    if not inside(sweep_dir, Path(cfg.out)):
        raise UsageError(f"experiment name {spec.name!r} leads outside {cfg.out}")
    trials = expand(spec, sweep_dir, log)  # every config checked before anything is written
    resolve_eval_settings(cfg)  # and the evaluation's, before any search runs
    manifest = sweep_dir / MANIFEST
    if manifest.exists():
        before = read_json(manifest)
        if before.get("config", {}).get("experiment") != cfg.experiment:
            raise UsageError(f"{sweep_dir} holds another experiment; give --name or --out")
    log(f"reproduce {cfg.experiment}: {len(trials)} searches in {sweep_dir}")
    log("resolved config: " + json.dumps(asdict(cfg), default=str))
    outcomes = run_sweep(spec, cfg.out, resources, quiet=quiet, log=log)
    write_json(manifest, {"config": asdict(cfg), "trials": [t.trial_id for t in trials]})
    if not cfg.skip_eval:
        for outcome in outcomes:
            if outcome.status == FINISHED:
                evaluate_trial(cfg, outcome.trial.run_dir, sweep_dir, quiet, log)
    written = write_report(sweep_dir)
    log(f"report: {written[0]}")
    return sweep_dir


# -- training from scratch ---------------------------------------------------------------------
def eval_overrides(cfg: ReproduceConfig, run_cfg: dict[str, Any]) -> dict[str, Any]:
    """The evaluation config of one trial's architectures (its dataset and seed)."""
    overrides: dict[str, Any] = {"preset": cfg.eval_preset, "dataset": run_cfg["dataset"],
                                 "seed": run_cfg["seed"], **cfg.eval_set}
    for key in ("data_dir", "threads", "device"):
        if getattr(cfg, key) is not None:
            overrides.setdefault(key, getattr(cfg, key))
    if cfg.eval_epochs is not None:
        overrides["epochs"] = cfg.eval_epochs
    if cfg.eval_depth == "searched":
        overrides["restricted_layers"] = run_cfg["layers"]
    return overrides


def resolve_eval_settings(cfg: ReproduceConfig) -> None:
    """Check ``--eval-set`` and the evaluation preset before any search runs."""
    from nasbench_suite.train import resolve_eval_config

    if cfg.skip_eval:
        return
    resolve_eval_config(eval_overrides(cfg, {"dataset": cfg.dataset, "seed": cfg.seeds[0],
                                             "layers": 5}))


def evaluate_trial(cfg: ReproduceConfig, run_dir: Path, sweep_dir: Path, quiet: bool,
                   log: Callable[[str], None]) -> list[Path]:
    """Train the trial's derived architecture (and, for a series seed, every recorded one)
    from scratch, once; a finished evaluation (its result) is not run again."""
    from nasbench_suite.evalfolder import EvalFolder
    from nasbench_suite.train import load_genotypes, resolve_eval_config, train_from_scratch

    run = RunFolder(run_dir)
    run_cfg = run.config_dict()
    final = run.genotype()
    points = [("final", final)]
    if run_cfg["method"] == "gold" and run_cfg["seed"] in cfg.series_seeds:
        # The series' last point is usually the final architecture: trained once, as "final".
        points += [(label, genotype) for label, genotype in load_genotypes(str(run_dir), None)[0]
                   if genotype.to_dict() != final.to_dict()]
    overrides = eval_overrides(cfg, run_cfg)
    done = []
    for label, genotype in points:
        out = run.evaluation_dir(label)
        if not EvalFolder(out).done():
            eval_cfg = resolve_eval_config({**overrides, "source": str(run_dir)})
            ops = tuple(run_cfg["ops"]) if run_cfg.get("ops") else None
            train_from_scratch(eval_cfg, label, genotype, ops, progress=not quiet, log=log,
                               run_dir=out)
        done.append(out)
    return done


# -- the report --------------------------------------------------------------------------------
def _arm(method: str, space: str, order: int) -> str:
    name = {"darts": f"DARTS ({'2nd' if order == 2 else '1st'} order)", "gold": "GOLD-NAS"}
    return f"{name.get(method, method)}, {space}"


def collect(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-trial rows, per-epoch eigenvalues and the evaluated series points, from the
    experiment folder only (no checkpoints needed), read through its run folders."""
    manifest = sweep_dir / MANIFEST
    if not manifest.exists():
        raise UsageError(f"{sweep_dir} is not a reproduce folder (no {MANIFEST})")
    manifest_data = read_json(manifest)
    trials = manifest_data["trials"]
    series_seeds = set(manifest_data["config"].get("series_seeds") or [])
    rows, eig_rows, series_rows = [], [], []
    for trial_id in trials:
        run = RunFolder(sweep_dir / trial_id)
        if run.status() != FINISHED:
            continue
        cfg = run.config_dict()
        summary = run.summary()
        inherited, derived = summary.inherited, summary.derived
        arm = _arm(cfg["method"], cfg["space"], int(cfg.get("hp", {}).get("order", 1)))
        eig = [(m["epoch"], m["hessian_eig"]) for m in run.metrics()
               if m.get("hessian_eig") is not None]
        eig_rows += [{"arm": arm, "seed": cfg["seed"], "epoch": e, "eigenvalue": v}
                     for e, v in eig]
        evaluations = run.evaluations()
        scratch = evaluations["final"].test_acc if "final" in evaluations else math.nan
        supernet = inherited.supernet_acc if inherited.supernet_acc is not None else math.nan
        rows.append({
            "arm": arm, "method": cfg["method"], "space": cfg["space"], "seed": cfg["seed"],
            "trial": trial_id, "param_free_share": derived.param_free_share,
            "mmacs": derived.macs / 1e6, "mparams": derived.params / 1e6,
            "supernet_acc": supernet, "inherited_acc": inherited.derived_acc,
            "drop": supernet - inherited.derived_acc, "split": inherited.split,
            "scratch_acc": scratch,
            "eig_start": eig[0][1] if eig else math.nan,
            "eig_end": eig[-1][1] if eig else math.nan,
            "search_time_s": summary.search_time_s, "epochs_run": summary.epochs_run})
        if run.has_series() and cfg["seed"] in series_seeds:
            final = run.genotype().to_dict()
            for n, point in enumerate(run.series()):
                label = f"point{point.get('index', n)}"
                if point["genotype"] == final:
                    label = "final"  # the same architecture, trained once
                if label in evaluations:
                    series_rows.append({
                        "arm": arm, "seed": cfg["seed"], "point": point.get("index", n),
                        "epoch": point["epoch"], "mmacs": point["macs"] / 1e6,
                        "mparams": point["params"] / 1e6, "inherited_acc": point["acc"],
                        "scratch_acc": evaluations[label].test_acc})
    if not rows:
        raise UsageError(f"{sweep_dir} has no finished trial yet")
    order = {_arm(m, s, o): i for i, (m, s) in enumerate(ARMS) for o in (1, 2)}
    df = pd.DataFrame(rows)
    df = df.sort_values(["arm", "seed"], key=lambda c: c.map(order) if c.name == "arm" else c)
    return (df.reset_index(drop=True), pd.DataFrame(eig_rows, columns=["arm", "seed", "epoch",
                                                                      "eigenvalue"]),
            pd.DataFrame(series_rows, columns=["arm", "seed", "point", "epoch", "mmacs",
                                               "mparams", "inherited_acc", "scratch_acc"]))


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per method/space (std 0 for a single seed)."""
    cols = [c for c, _, _ in COLUMNS]
    grouped = df.groupby("arm", sort=False)[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{c}_{s}" for s, c in out.columns]
    out.insert(0, "seeds", grouped.size())
    return out.reset_index()


def _pm(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "not run"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def markdown_tables(df: pd.DataFrame, summary: pd.DataFrame,
                    series: pd.DataFrame) -> tuple[str, str, str]:
    """(summary, per-trial, series) Markdown tables (pandas)."""
    heads = [h for _, h, _ in COLUMNS]
    table = pd.DataFrame({"method, space": summary["arm"], "seeds": summary["seeds"].astype(str),
                          **{h: [_pm(m, s, f) for m, s in zip(summary[f"{c}_mean"],
                                                             summary[f"{c}_std"], strict=True)]
                             for c, h, f in COLUMNS}}, columns=["method, space", "seeds", *heads])
    per = pd.DataFrame({"method, space": df["arm"], "seed": df["seed"].astype(str),
                        **{h: ["not run" if pd.isna(v) else f.format(v) for v in df[c]]
                           for c, h, f in COLUMNS}}, columns=["method, space", "seed", *heads])
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
    import matplotlib

    from nasbench_suite.plots import save_figure
    from nasbench_suite.reproduce_plots import FIGURES

    out = out or sweep_dir / REPORT
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder")
    df, eig, series = collect(sweep_dir)
    summary = summarise(df)
    settings = read_json(sweep_dir / MANIFEST)["config"]
    written: list[Path] = []
    for name, frame in (("trials.csv", df), ("summary.csv", summary),
                        ("eigenvalues.csv", eig), ("series.csv", series)):
        atomic_write(out / name, frame.to_csv(index=False, float_format="%.6g"))
        written.append(out / name)
    figures = []
    for stem, (title, plot) in FIGURES.items():
        fig = plot(df, eig, series)
        if fig is None:
            continue
        written.extend(save_figure(fig, out, stem, ("png",)))
        figures.append((stem, title))
    text = _report_text(settings, summary, df, series, figures, sweep_dir)
    atomic_write(out / "report.md", text)
    # PNG bytes depend on the matplotlib that drew them; the tables and data do not.
    write_json(out / BUILD, {"matplotlib": matplotlib.__version__})
    return [out / "report.md", *written, out / BUILD]


def _report_text(settings: dict[str, Any], summary: pd.DataFrame, df: pd.DataFrame,
                 series: pd.DataFrame, figures: Sequence[tuple[str, str]],
                 sweep_dir: Path) -> str:
    table, per_trial, series_table = markdown_tables(df, summary, series)
    order = "second" if settings["second_order"] else "first"
    eval_epochs = settings["eval_epochs"] or f"the {settings['eval_preset']} preset's"
    missing = sorted(set(read_json(sweep_dir / MANIFEST)["trials"]) - set(df["trial"]))
    parts = [
        f"# {settings['experiment']}: DARTS in the enlarged space\n",
        f"DARTS ({order} order, bi-level, softmax per edge) on the restricted and the relaxed "
        f"space, GOLD-NAS on the relaxed space; dataset `{settings['dataset']}`, search preset "
        f"`{settings['preset']}`, {settings['epochs']} search epochs each (GOLD-NAS stops at "
        f"its FLOPs floor), seeds {settings['seeds']}; every derived architecture trained "
        f"from scratch for {eval_epochs} epochs (preset `{settings['eval_preset']}`, depth: "
        f"{settings['eval_depth']}). Mean ± std over seeds. FLOPs are multiply-adds. "
        f"Drop = supernet accuracy - derived accuracy, both with the supernet's weights "
        f"(batch norm recalibrated) on the split named in trials.csv (runs of layout 2: the "
        f"scoring split, which no search reads). Accuracy from scratch: the test split, "
        f"read once after training. Eigenvalue: the largest (algebraic) eigenvalue of the "
        f"Hessian of the search loss w.r.t. the alphas (DARTS: validation images; GOLD-NAS: "
        f"its training images), on the same fixed images each time, first and last "
        f"measurement.\n",
        table,
        "## Per seed\n",
        per_trial,
    ]
    if missing:
        parts.append("Not finished (left out above): " + ", ".join(missing) + "\n")
    if len(series):
        parts += ["## GOLD-NAS series trained from scratch\n", series_table]
    for stem, title in figures:
        parts.append(f"![{title}]({stem}.png)\n")
    parts.append(f"Rebuild: `nasbench reproduce {settings['experiment']} --report-only "
                 f"--dir {sweep_dir.name}` from its parent folder, or `nasbench figures`.\n")
    return "\n".join(parts)


__all__ = ["ARMS", "EXPERIMENTS", "ReproduceConfig", "collect", "evaluate_trial",
           "run_reproduce", "summarise", "sweep_spec", "write_report"]
