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
from nasbench_suite.experiments.darts_failure.config import (
    ARM_TABLE,
    ARMS_BY_LABEL,
    NAME,
    ReproduceConfig,
)
from nasbench_suite.experiments.darts_failure.control import (
    CONTROL_SPACES,
    control_plan,
    train_control,
)
from nasbench_suite.experiments.darts_failure.report import write_report
from nasbench_suite.experiments.evals import Launcher, Settings
from nasbench_suite.sweep.spec import SweepSpec
from nasbench_suite.sweep.tune import Resources


# -- the sweeps --------------------------------------------------------------------------------
def _fixed(cfg: ReproduceConfig) -> dict[str, Any]:
    """What every trial of every arm shares: the data, the epochs, the instruments."""
    return {"preset": cfg.preset, "epochs": cfg.epochs, "hessian_every": cfg.hessian_every,
            "hessian_iters": cfg.hessian_iters, "score_every": cfg.score_every,
            **cfg.search_set, **cfg.shared_fields()}


def _method_overrides(cfg: ReproduceConfig, method: str) -> dict[str, Any]:
    return {"hp.order": 2 if cfg.second_order else 1} if method == "darts" else {}


def sweep_specs(cfg: ReproduceConfig) -> list[SweepSpec]:
    """The arms as sweeps into one folder, the same epochs and data for all: the arms without
    overrides as one methods x spaces sweep (the experiment's original three: their trial
    folders keep their names), then one sweep per arm with overrides, each override a
    one-value grid axis (its trials' folders name it, e.g. ``-skip=identity``)."""
    arms = [ARMS_BY_LABEL[label] for label in cfg.arms]
    plain = [a for a in arms if not a.overrides]
    specs = []
    if plain:
        methods = list(dict.fromkeys(a.method for a in plain))
        specs.append(SweepSpec(
            name=cfg.sweep_name, methods={m: _method_overrides(cfg, m) for m in methods},
            method_spaces={m: [a.space for a in plain if a.method == m] for m in methods},
            spaces=list(dict.fromkeys(a.space for a in ARM_TABLE if a in plain)),
            datasets=[cfg.dataset], seeds=list(cfg.seeds), fixed=_fixed(cfg)))
    for arm in arms:
        if arm.overrides:
            specs.append(SweepSpec(
                name=cfg.sweep_name, methods={arm.method: _method_overrides(cfg, arm.method)},
                spaces=[arm.space], datasets=[cfg.dataset], seeds=list(cfg.seeds),
                grid={k: [v] for k, v in arm.overrides}, fixed=_fixed(cfg)))
    return specs


def sweep_spec(cfg: ReproduceConfig) -> SweepSpec:
    """The first sweep (the default arms': DARTS on both spaces, GOLD-NAS on the relaxed)."""
    return sweep_specs(cfg)[0]


def eval_settings(cfg: ReproduceConfig) -> Settings:
    return Settings(series_seeds=tuple(cfg.series_seeds),
                    darts_es=cfg.darts_es, pdarts_skips=cfg.pdarts_skips,
                    eval_cpus=cfg.eval_cpus, eval_gpus=cfg.eval_gpus)


def launcher(cfg: ReproduceConfig, log: Log) -> Launcher:
    """Every architecture of a finished search (and its remedies' replays) trained from
    scratch as a Ray task; the protocol control's trainings (``control_cells``) first."""
    out = Launcher(eval_settings(cfg), lambda run: eval_overrides(cfg, run.config_dict()), log)
    if cfg.control_cells:
        submit_control(cfg, out)
    return out


def searched_layers(cfg: ReproduceConfig, space: str) -> int:
    """The depth the experiment's searches of ``space`` run at (its preset and ``--set``)."""
    from nasbench_suite.config import resolve_config

    values = {**cfg.search_set, "preset": cfg.preset, "method": "darts", "space": space,
              "dataset": cfg.dataset}
    values.pop("ops", None)
    values.pop("skip", None)
    return resolve_config(values).layers


def control_trainings(cfg: ReproduceConfig) -> list[tuple[str, str, int, Any, Path]]:
    """The protocol control's trainings (experiments/darts_failure/control.py) at the
    experiment's searched depths."""
    layers = {space: searched_layers(cfg, space) for space in CONTROL_SPACES}
    sweep_dir = (Path(cfg.out) / cfg.sweep_name).resolve()
    return control_plan(sweep_dir, layers, cfg.control_cells, list(cfg.seeds))


def submit_control(cfg: ReproduceConfig, out: Launcher) -> None:
    """Every training of the protocol control, under the searches' evaluation protocol."""
    for _space, label, seed, genotype, folder in control_trainings(cfg):
        overrides = eval_overrides(cfg, {"dataset": cfg.dataset, "seed": seed,
                                         "layers": len(genotype.cell_groups) or
                                         searched_layers(cfg, "restricted")})
        out.submit_call(f"control/{folder.name}", folder, train_control, label,
                        genotype.to_json(), overrides, max(1, int(cfg.eval_cpus)), str(folder))


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
           "score_every", "collapse_threshold", "darts_es", "pdarts_skips", "series_seeds",
           "arms", "control_cells"),
    sweep_spec=sweep_spec, check_evals=resolve_eval_settings, launcher=launcher,
    write_report=write_report, sweep_specs=sweep_specs)


def run_reproduce(cfg: ReproduceConfig, resources: Resources | None = None,
                  quiet: bool = False, log: Log = print) -> Path:
    """The experiment end to end (experiments/base.py's driver); returns its folder."""
    return run_experiment(EXPERIMENT, cfg, resources, quiet, log)
