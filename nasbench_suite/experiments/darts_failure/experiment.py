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

Arms (``arms``, config.ARM_TABLE; ``--arms all``) split the confounds of the first
references, at the same data and budget: DARTS restricted; DARTS relaxed with the relaxed
space's own (GOLD-NAS's) non-affine BN skip and with an identity skip; DARTS on the restricted
topology with RobustDARTS's S2 ops; DARTS with the paper's alpha lr 3e-4 unscaled beside the
mini preset's rescaled one, in both spaces; second-order DARTS relaxed; GOLD-NAS relaxed. The
skip, the op list and ``hp.alpha_budget_steps`` are in every run's config.yaml, its alpha lr
(``a_lr``) in its metrics. ``control_cells`` adds the protocol control (control.py): the
all-skip cells, DARTS V2 and random cells trained under the same protocol, which the report
puts beside every accuracy from scratch.

Everything resumes: finished searches and trainings are skipped, interrupted ones resume
from their checkpoints. The folder is an experiment folder (experiments/base.py). A finished
training is skipped by its folder, whatever its settings: a raised protocol (more evaluation
epochs, larger images) goes into a new ``--name``.

The arms experiment (issue 27), committed in results/reference/ with its reading::

    nasbench reproduce darts-failure --dataset npz:../shared/data/cifar10-10k.npz \\
      --name darts-failure-arms-cifar10-10k --out results/reference --seeds 0,1,2 \\
      --epochs 40 --arms all --control-cells 5 --hessian-every 2 --hessian-iters 10 \\
      --score-every 10 --darts-es --pdarts-skips 2 --eval-epochs 10 --series-seeds 0 \\
      --set image_size=8 --set batch_size=16 --set max_train_images=400 \\
      --set augment=none --set hessian_tol=0.01 --set hessian_images=64 \\
      --eval-set image_size=8 --cpus-per-trial 1 --eval-cpus 1

(``--arms gold-relaxed`` with the same flags first runs the protocol control with only the
cheapest search; the full command then skips what is done.)

Why this regime (measured with `nasbench run --method darts --threads 1 --set image_size=8
--set batch_size=16`, one thread per run on a 2-core machine shared with other work at load
average 16-26, so wall times ran ~10x the unloaded ones and only the curves and ratios are
used): the supernet must pass 85% training accuracy and run 10 epochs past it. The long
reference (3,600 weight-training images, crop and flip, 225 steps per epoch) reached only
0.59-0.63 after 50 epochs, +0.005 per epoch at its end: more epochs at that size would cost
several times the budget. A smaller training set fits in far fewer steps: with
``max_train_images=400`` (200 weight images, 13 steps per epoch) and no augmentation,
restricted DARTS's supernet (seed 0) reached 0.42, 0.56, 0.70, 0.76, 0.86 after epochs 7, 9,
10, 12, 14 of a 30-epoch schedule: it passed 85% at epoch 14; with crop and flip the same
run was at 0.39 after 16 epochs (+0.02 an epoch: past epoch 40 for 85%, an extrapolation).
Relaxed DARTS (seed 0, the same data, a 40-epoch schedule) passed 85% at epoch 10 (0.72,
0.78, 0.85 after epochs 8-10). The restricted search kept 0.93-1.00 from epoch 17 to 24;
other arms and seeds are not measured: the report gives every search's fit epoch. Larger images cost
more per step (16x16: 1.67x an 8x8 step, measured) and were not shown to fit faster, so the
small unaugmented set is the cheapest regime; 40 epochs leave 20+ past the fit. It makes 520
alpha steps per DARTS run: the rescaled arms' alpha lr is 3e-4 x 19,550 / 520 = 0.0113
(37.6x), the paperlr arms' 3e-4.

Budget (core-seconds; per-step costs from the long reference's own metrics, one thread, two
runs side by side beside other work: restricted 0.50 s a step and 20 s an eigenvalue,
relaxed 0.30 s and 9 s, GOLD-NAS 0.105 s a one-level step and 5 s; ratios to them measured
in one process, alternating, 3 steps each: S2 0.51x restricted, identity skip 0.92x relaxed,
second order 2.85x relaxed first order). Per seed, 40 epochs of 13 steps and 21 eigenvalues:
restricted 680, restricted-paperlr 680, restricted-s2 345, relaxed 345, relaxed-identity 330,
relaxed-paperlr 345, darts2-relaxed 636, GOLD-NAS at most 210 (25 one-level steps an epoch;
it stops earlier at its floor): 3,570 s, x 3 seeds = 10,700 s (3.0 core-hours). Trainings
from scratch (10 epochs, 8x8, all 10,000 images: 270-530 s each in the long reference, 400
taken): about 40 for the searches (final, DARTS-ES, P-DARTS, the GOLD-NAS series of seed 0)
= 4.4 core-hours, and 39 for the control (7 restricted + 6 relaxed cells x 3 seeds) = 4.3
core-hours. In all about 11.7 core-hours, 5.9 hours of the two cores, plus Ray and the tail of
each arm's sweep (the arms' sweeps run one after the other; trainings fill the idle core):
about 6.5 hours, under the 10-hour cap. Raising the protocol to 15 evaluation epochs adds
about 4.4 core-hours (8.2 hours in all); to 20, about 8.7 (over the cap: drop the
P-DARTS replay or evaluate fewer remedy architectures). These were estimates from measured
per-step costs; the run itself took 8.6 core-hours (2.5 searching, 6.1 training from
scratch), about 4.3 hours of the two cores (its reading gives the breakdown).
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
           "arms", "control_cells", "fit_threshold"),
    sweep_spec=sweep_spec, check_evals=resolve_eval_settings, launcher=launcher,
    write_report=write_report, sweep_specs=sweep_specs)


def run_reproduce(cfg: ReproduceConfig, resources: Resources | None = None,
                  quiet: bool = False, log: Log = print) -> Path:
    """The experiment end to end (experiments/base.py's driver); returns its folder."""
    return run_experiment(EXPERIMENT, cfg, resources, quiet, log)
