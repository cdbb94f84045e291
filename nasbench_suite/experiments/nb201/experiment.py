"""`nasbench reproduce nb201`: DARTS, GOLD-NAS, EDAS, PAD-NAS and NSE on NAS-Bench-201,
judged by the benchmark's table instead of trainings from scratch.

Why this experiment: every other comparison in the suite needs an architecture trained from
scratch to know what a search found, and on a CPU those trainings are so short that their
noise swamps the methods' differences. In the nb201 space every cell the methods can derive
has a published 200-epoch accuracy, so the searches are the whole cost and the judge is
exact. One sweep, one Ray session: the five methods on the ``nb201`` space with the same
dataset, supernet shape (``channels``, ``layers``, ``image_size``), data splits (the preset's
``train_portion`` and ``score_portion``, never overridden per method), epochs (GOLD-NAS: a
cap, it stops at its FLOPs floor; PAD-NAS: ``padnas_epochs`` if given) and seeds. DARTS is
first order unless ``second_order``. Nothing is trained from scratch (the launcher is None).
The report (experiments.nb201.report) reads each run's per-epoch genotypes (arch.jsonl)
and looks them up in the table.

The reference (measured budget: see results/reference/README or the final numbers in
this docstring's last paragraph)::

    nasbench reproduce nb201 --dataset npz:/work/shared/data/cifar10-10k.npz \\
        --seeds 0,1,2 --epochs 40 --threads 1 --cpus-per-trial 1 \\
        --name nb201-cifar10-10k --out results/reference

Budget, measured with ``nasbench run --method M --space nb201 --dataset
npz:/work/shared/data/cifar10-10k.npz --set image_size=16 --set layers=6 --threads 1`` on
a 2-core machine shared with six other agents (load average 6-9): BUDGET_NOTE.

Everything resumes: finished searches are skipped, interrupted ones resume from their
checkpoints; ``--report-only`` (or `nasbench figures`) rebuilds the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasbench_suite.experiments.base import Experiment, Log, run_experiment
from nasbench_suite.experiments.nb201.config import NAME, Nb201Config
from nasbench_suite.experiments.nb201.report import write_report
from nasbench_suite.spaces.nb201_arch import NB201
from nasbench_suite.sweep.spec import SweepSpec
from nasbench_suite.sweep.tune import Resources


def sweep_spec(cfg: Nb201Config) -> SweepSpec:
    """Every method on nb201 with the same data, shape, splits, seeds and epochs."""
    shape: dict[str, Any] = {"channels": cfg.channels, "layers": cfg.layers}
    if cfg.image_size is not None:
        shape["image_size"] = cfg.image_size
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs, **shape,
                             **cfg.search_set, **cfg.shared_fields()}
    methods: dict[str, dict[str, Any]] = {m: {} for m in cfg.methods}
    if "darts" in methods:
        methods["darts"] = {"hp.order": 2 if cfg.second_order else 1}
    if "padnas" in methods and cfg.padnas_epochs:
        methods["padnas"] = {"epochs": cfg.padnas_epochs}
    return SweepSpec(name=cfg.sweep_name, methods=methods, spaces=[NB201],
                     datasets=[cfg.dataset], seeds=list(cfg.seeds), fixed=fixed)


def check_evals(cfg: Nb201Config) -> None:
    """Nothing to check: the table is the judge, nothing is trained from scratch."""


def launcher(cfg: Nb201Config, log: Log) -> None:
    """No trainings from scratch (the driver takes None as "none")."""
    return None


EXPERIMENT = Experiment(
    name=NAME,
    summary="the five methods on NAS-Bench-201, their derived cells judged by the "
            "benchmark's table over the search epochs, against random search",
    config=Nb201Config,
    flags=("padnas_epochs", "second_order", "confidence", "resamples"),
    sweep_spec=sweep_spec, check_evals=check_evals, launcher=launcher,
    write_report=write_report)


def run_nb201(cfg: Nb201Config, resources: Resources | None = None, quiet: bool = False,
              log: Log = print) -> Path:
    """The experiment end to end (experiments/base.py's driver); returns its folder."""
    return run_experiment(EXPERIMENT, cfg, resources, quiet, log)
