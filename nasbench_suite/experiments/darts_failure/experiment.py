"""`nasbench reproduce darts-failure`: DARTS in the enlarged space, measured.

The GOLD-NAS paper says differentiable methods fail in the relaxed space but gives no
settings. This experiment runs DARTS (softmax, bi-level, first order unless
``second_order``) on the restricted and on the relaxed space and GOLD-NAS on the relaxed
space, over several seeds, with the same data and the same epoch budget (GOLD-NAS stops
earlier when it passes its FLOPs floor), as one sweep. Optional arms replay the literature's
remedies on the DARTS searches (nasbench_suite.experiments.evals): DARTS-ES (``darts_es``) and
P-DARTS's skip limit (``pdarts_skips``). Every architecture is trained from scratch as a Ray
task as soon as its search finishes, and a report (experiments.darts_failure.report) gathers,
per arm, the collapse indicators over the epochs (parameter-free share, skip connections in
normal cells, derived FLOPs, the Hessian eigenvalue, inherited accuracies on the scoring
split, how far the alphas moved) and at the end, with the accuracy from scratch.

Everything resumes: finished searches and trainings are skipped, interrupted ones resume
from their checkpoints. The folder is an experiment folder (experiments/base.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasbench_suite.experiments.base import Experiment, Log, run_experiment
from nasbench_suite.experiments.darts_failure.config import NAME, ReproduceConfig
from nasbench_suite.experiments.darts_failure.report import write_report
from nasbench_suite.experiments.evals import Launcher, Settings
from nasbench_suite.sweep.spec import SweepSpec
from nasbench_suite.sweep.tune import Resources


# -- the sweep ---------------------------------------------------------------------------------
def sweep_spec(cfg: ReproduceConfig) -> SweepSpec:
    """DARTS on both spaces and GOLD-NAS on the relaxed one, the same epochs and data."""
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs,
                             "hessian_every": cfg.hessian_every,
                             "hessian_iters": cfg.hessian_iters,
                             "score_every": cfg.score_every, **cfg.search_set,
                             **cfg.shared_fields()}
    return SweepSpec(
        name=cfg.sweep_name,
        methods={"darts": {"hp.order": 2 if cfg.second_order else 1}, "gold": {}},
        method_spaces={"darts": ["restricted", "relaxed"], "gold": ["relaxed"]},
        spaces=["restricted", "relaxed"], datasets=[cfg.dataset], seeds=list(cfg.seeds),
        fixed=fixed)


def eval_settings(cfg: ReproduceConfig) -> Settings:
    return Settings(series_seeds=tuple(cfg.series_seeds),
                    darts_es=cfg.darts_es, pdarts_skips=cfg.pdarts_skips,
                    eval_cpus=cfg.eval_cpus, eval_gpus=cfg.eval_gpus)


def launcher(cfg: ReproduceConfig, log: Log) -> Launcher:
    """Every architecture of a finished search (and its remedies' replays) trained from
    scratch as a Ray task."""
    return Launcher(eval_settings(cfg), lambda run: eval_overrides(cfg, run.config_dict()), log)


# -- training from scratch ---------------------------------------------------------------------
def eval_overrides(cfg: ReproduceConfig, run_cfg: dict[str, Any]) -> dict[str, Any]:
    """The evaluation config of one trial's architectures (its dataset and seed)."""
    overrides: dict[str, Any] = {"preset": cfg.eval_preset, "dataset": run_cfg["dataset"],
                                 "seed": run_cfg["seed"], **cfg.eval_set}
    for key, value in cfg.shared_fields().items():
        overrides.setdefault(key, value)
    if cfg.eval_epochs is not None:
        overrides["epochs"] = cfg.eval_epochs
    if cfg.eval_depth == "searched":
        overrides["restricted_layers"] = run_cfg["layers"]
    return overrides


def resolve_eval_settings(cfg: ReproduceConfig) -> None:
    """Check ``--eval-set`` and the evaluation preset before any search runs."""
    from nasbench_suite.training.scratch import resolve_eval_config

    resolve_eval_config(eval_overrides(cfg, {"dataset": cfg.dataset, "seed": cfg.seeds[0],
                                             "layers": 5}))


EXPERIMENT = Experiment(
    name=NAME,
    summary="DARTS on the restricted and the relaxed space and GOLD-NAS on the relaxed one: "
            "collapse indicators over epochs and accuracy from scratch",
    config=ReproduceConfig,
    flags=("second_order", "hessian_every", "hessian_iters", "eval_preset", "eval_depth",
           "score_every", "collapse_threshold", "darts_es", "pdarts_skips", "series_seeds"),
    sweep_spec=sweep_spec, check_evals=resolve_eval_settings, launcher=launcher,
    write_report=write_report)


def run_reproduce(cfg: ReproduceConfig, resources: Resources | None = None,
                  quiet: bool = False, log: Log = print) -> Path:
    """The experiment end to end (experiments/base.py's driver); returns its folder."""
    return run_experiment(EXPERIMENT, cfg, resources, quiet, log)
