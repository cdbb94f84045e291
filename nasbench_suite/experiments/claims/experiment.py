"""`nasbench reproduce claims`: each paper's headline claim, measured with one data set and
one budget.

One Ray session runs one sweep: DARTS (first order) and EDAS on the restricted space with the
same epochs, PAD-NAS and NSE on the restricted space, GOLD-NAS on the relaxed space (its
epochs are a cap), all with the same dataset, network size and seeds. As each search
finishes, its trainings from scratch are submitted as Ray tasks (nasbench_suite.experiments.evals)
with one short schedule for all (``eval_epochs``, the mini evaluation preset, the search's
image size and depth):

* GOLD-NAS: every recorded architecture of its Pareto series (``evals/<run>/pointN``);
* NSE: each round's best architecture at the cost budget (``evals/<run>/roundR``);
* PAD-NAS: ``rankcorr_archs`` fixed architectures of the unpruned space
  (nasbench_suite.experiments.rankcorr, ``<run>/rankcorr/arch-N``), then Kendall's tau per stage.

DARTS in the relaxed space is not searched again: its row reads an existing
``reproduce darts-failure`` folder (``darts_failure``; by default the committed long
reference ``results/reference/darts-failure-long-*`` when there is one). The report
(experiments.claims.report) has one row per claim with a verdict decided from bootstrap
confidence intervals over seeds. Everything resumes: finished searches and trainings are
skipped, interrupted ones resume from their checkpoints; ``--report-only`` rebuilds the
report. The folder is a reproduce folder (``reproduce.json``, ``evals/``, ``report/``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasbench_suite.experiments.base import Experiment, Log, run_experiment
from nasbench_suite.experiments.claims.config import ARMS, NAME, ClaimsConfig
from nasbench_suite.experiments.claims.report import nse_rounds, write_report
from nasbench_suite.experiments.evals import Launcher, Settings
from nasbench_suite.store.runfolder import FINISHED, RunFolder
from nasbench_suite.sweep.spec import SweepSpec
from nasbench_suite.sweep.tune import Resources


def sweep_spec(cfg: ClaimsConfig) -> SweepSpec:
    """Every method on its claim's space, the same data, seeds, network and epochs."""
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs, **cfg.search_set,
                             **cfg.shared_fields()}
    methods: dict[str, dict[str, Any]] = {m: {} for m in ARMS}
    methods["darts"] = {"hp.order": 1}
    # PAD-NAS: the preset's epochs unless given (a method section's run.epochs would be
    # overridden by the shared epochs)
    from nasbench_suite.config import load_preset

    pad_epochs = cfg.padnas_epochs or (((load_preset(cfg.preset).get("methods") or {})
                                        .get("padnas") or {}).get("run") or {}).get("epochs")
    if pad_epochs:
        methods["padnas"] = {"epochs": int(pad_epochs)}
    return SweepSpec(name=cfg.sweep_name, methods=methods,
                     method_spaces={m: [s] for m, s in ARMS.items()},
                     spaces=["restricted", "relaxed"], datasets=[cfg.dataset],
                     seeds=list(cfg.seeds), fixed=fixed)


def rankcorr_settings(cfg: ClaimsConfig) -> Any:
    from nasbench_suite.experiments.rankcorr import RankCorrSettings

    return RankCorrSettings(archs=cfg.rankcorr_archs, eval_epochs=cfg.eval_epochs,
                            eval_set=dict(cfg.eval_set),
                            threads=max(1, int(cfg.eval_cpus)))


def plan_for(cfg: ClaimsConfig) -> Callable[[RunFolder], list[tuple[str, Any, Path]]]:
    """What each finished search trains from scratch (module docstring)."""
    from nasbench_suite.experiments import rankcorr
    from nasbench_suite.training.scratch import load_genotypes

    settings = rankcorr_settings(cfg)

    def plan(run: RunFolder) -> list[tuple[str, Any, Path]]:
        if run.status() != FINISHED:
            return []
        method = run.config_dict().get("method")
        if method == "gold" and run.has_series():
            return [(label, g, run.evaluation_dir(label))
                    for label, g in load_genotypes(str(run.path), None)[0]]
        if method == "nse":
            return [(f"round{r}", g, run.evaluation_dir(f"round{r}"))
                    for r, g in nse_rounds(run)]
        if method == "padnas" and run.kept_checkpoints():
            return rankcorr.plan(run, settings)
        return []

    return plan


def eval_overrides(cfg: ClaimsConfig, run: RunFolder) -> dict[str, Any]:
    from nasbench_suite.experiments.rankcorr import eval_overrides as scratch

    overrides = scratch(run, rankcorr_settings(cfg))
    for key, value in cfg.shared_fields().items():
        if key != "threads":  # the rank correlation's trainings set their own
            overrides.setdefault(key, value)
    return overrides


def check_evals(cfg: ClaimsConfig) -> None:
    """The trainings' settings, checked before any search runs."""
    from nasbench_suite.training.scratch import resolve_eval_config

    resolve_eval_config({"preset": "mini", "dataset": cfg.dataset, "epochs": cfg.eval_epochs,
                         **cfg.eval_set})


def launcher(cfg: ClaimsConfig, log: Log) -> Launcher:
    """What each finished search trains from scratch (:func:`plan_for`), as Ray tasks."""
    return Launcher(Settings(eval_cpus=cfg.eval_cpus, eval_gpus=cfg.eval_gpus),
                    lambda run: eval_overrides(cfg, run), log, plan=plan_for(cfg))


def finish_rankcorr(cfg: ClaimsConfig, runs: list[RunFolder],
                    log: Callable[[str], None]) -> None:
    """Kendall's tau per stage of every finished PAD-NAS run whose trainings are done."""
    from nasbench_suite.experiments import rankcorr
    from nasbench_suite.store.evalfolder import EvalFolder

    settings = rankcorr_settings(cfg)
    for run in runs:
        if run.status() != FINISHED or run.config_dict().get("method") != "padnas":
            continue
        if not run.kept_checkpoints():
            log(f"rankcorr {run.name}: no stage checkpoints (its claim: not observed)")
            continue
        if run.has_rankcorr() and run.rankcorr().archs == settings.archs:
            continue
        planned = rankcorr.plan(run, settings)
        if all(EvalFolder(folder).done() for _, _, folder in planned):
            result = rankcorr.finish(run, settings)
            log(f"rankcorr {run.name}: tau per stage {result.tau}")


EXPERIMENT = Experiment(
    name=NAME,
    summary="each paper's headline claim with one data set and budget, verdicts from "
            "bootstrap intervals over seeds",
    config=ClaimsConfig,
    flags=("padnas_epochs", "rankcorr_archs", "darts_failure", "gap_tolerance", "confidence",
           "resamples"),
    sweep_spec=sweep_spec, check_evals=check_evals, launcher=launcher,
    write_report=write_report, finish=finish_rankcorr)


def run_claims(cfg: ClaimsConfig, resources: Resources | None = None, quiet: bool = False,
               log: Log = print) -> Path:
    """The experiment end to end (experiments/base.py's driver); returns its folder."""
    return run_experiment(EXPERIMENT, cfg, resources, quiet, log)
