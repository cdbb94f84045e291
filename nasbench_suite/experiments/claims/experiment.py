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

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.darts_failure.experiment import ExperimentConfig
from nasbench_suite.files import read_json, write_json
from nasbench_suite.store.runfolder import FINISHED, RunFolder, inside
from nasbench_suite.sweep.spec import SweepSpec, expand
from nasbench_suite.sweep.tune import Resources, run_sweep, worker_env

EXPERIMENT = "claims"
#: the searches: method -> its space
ARMS = {"darts": "restricted", "edas": "restricted", "padnas": "restricted",
        "nse": "restricted", "gold": "relaxed"}
#: the long darts-failure reference, looked for beside the experiment's folder
DARTS_FAILURE_PATTERN = "darts-failure-long-*"


@dataclass
class ClaimsConfig(ExperimentConfig):
    """The claims experiment's knobs."""

    experiment: str = EXPERIMENT
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    #: search epochs of DARTS, EDAS, NSE and GOLD-NAS (a cap for GOLD-NAS)
    epochs: int = 10
    #: PAD-NAS's epochs, split over its stages (None: the preset's; single-path steps are
    #: cheap and the stages need enough of them to leave chance accuracy)
    padnas_epochs: int | None = None
    #: epochs of every training from scratch (one short schedule for all)
    eval_epochs: int = 2
    #: architectures of PAD-NAS's rank correlation
    rankcorr_archs: int = 10
    #: a `reproduce darts-failure` folder for the DARTS-in-the-relaxed-space row; None: the
    #: committed long reference if there is one (resolved when the experiment runs)
    darts_failure: str | None = None
    #: EDAS's "no drop": its gap's interval must lie below this (accuracy, 0-1)
    gap_tolerance: float = 0.02
    confidence: float = 0.95
    resamples: int = 2000

    def validate(self) -> None:
        self.validate_common()
        for key in ("epochs", "eval_epochs"):
            if getattr(self, key) <= 0:
                raise UsageError(f"{key.replace('_', ' ')} must be a positive integer, got "
                                 f"{getattr(self, key)}")
        if self.padnas_epochs is not None and self.padnas_epochs <= 0:
            raise UsageError(f"padnas epochs must be a positive integer, got "
                             f"{self.padnas_epochs}")
        if self.rankcorr_archs < 2:
            raise UsageError(f"--rankcorr-archs must be at least 2, got {self.rankcorr_archs}")
        if not 0 < self.confidence < 1:
            raise UsageError(f"--confidence must be in (0, 1), got {self.confidence}")
        if self.resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {self.resamples}")
        if not 0 <= self.gap_tolerance < 1:
            raise UsageError(f"--gap-tolerance must be in [0, 1), got {self.gap_tolerance}")
        if self.darts_failure:
            check_darts_failure(Path(self.darts_failure))


def check_darts_failure(folder: Path) -> None:
    """A darts-failure experiment folder, or a UsageError."""
    from nasbench_suite.experiments.darts_failure.experiment import MANIFEST

    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise UsageError(f"--darts-failure {folder} is not a reproduce darts-failure folder "
                         f"(no {MANIFEST})")
    if read_json(manifest).get("config", {}).get("experiment") != "darts-failure":
        raise UsageError(f"--darts-failure {folder} holds another experiment")


def resolve_darts_failure(cfg: ClaimsConfig, sweep_dir: Path) -> Path | None:
    """The darts-failure folder the report reads: ``darts_failure`` if given (a relative
    path that is not found from here is looked for beside the experiment), else the last
    ``darts-failure-long-*`` beside the experiment (in results/reference/: the committed
    long reference), else None. Resolved when the report is built, so `nasbench figures`
    picks up a long reference committed later."""
    if cfg.darts_failure:
        given = Path(cfg.darts_failure)
        beside = sweep_dir.parent / given.name  # a relative path given from another folder
        return beside if not given.is_absolute() and not given.exists() and beside.is_dir() \
            else given
    found = sorted(p for p in sweep_dir.parent.glob(DARTS_FAILURE_PATTERN) if p.is_dir())
    return found[-1] if found else None


def sweep_spec(cfg: ClaimsConfig) -> SweepSpec:
    """Every method on its claim's space, the same data, seeds, network and epochs."""
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs, **cfg.search_set}
    for key in ("data_dir", "threads", "device"):
        if getattr(cfg, key) is not None:
            fixed[key] = getattr(cfg, key)
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


def nse_rounds(run: RunFolder) -> list[tuple[int, Any]]:
    """(round, genotype) of each NSE round's best architecture at the budget."""
    from nasbench_suite.spaces import Genotype

    return sorted((int(p["round"]), Genotype.from_dict(p["genotype"])) for p in run.series()
                  if p.get("best_at_budget"))


def plan_for(cfg: ClaimsConfig) -> Callable[[RunFolder], list[tuple[str, Any, Path]]]:
    """What each finished search trains from scratch (module docstring)."""
    from nasbench_suite import rankcorr
    from nasbench_suite.search.scratch import load_genotypes

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
    for key in ("data_dir", "device"):
        if getattr(cfg, key) is not None:
            overrides.setdefault(key, getattr(cfg, key))
    return overrides


def run_claims(cfg: ClaimsConfig, resources: Resources | None = None, quiet: bool = False,
               log: Callable[[str], None] = print) -> Path:
    """Searches on Ray Tune, trainings from scratch as Ray tasks as searches finish, PAD-NAS's
    rank correlations, then the report; returns the experiment folder."""
    from nasbench_suite.experiments.claims.report import write_report
    from nasbench_suite.experiments.darts_failure.experiment import MANIFEST
    from nasbench_suite.experiments.evals import Launcher, Settings
    from nasbench_suite.search.scratch import resolve_eval_config
    from nasbench_suite.sweep.ray_session import ray_session

    cfg.validate()
    resources = resources or Resources()
    resources.validate()
    spec = sweep_spec(cfg)
    sweep_dir = (Path(cfg.out) / spec.name).resolve()
    if not inside(sweep_dir, Path(cfg.out)):
        raise UsageError(f"experiment name {spec.name!r} leads outside {cfg.out}")
    trials = expand(spec, sweep_dir, log)  # every config checked before anything is written
    if not cfg.skip_eval:
        resolve_eval_config({"preset": "mini", "dataset": cfg.dataset,
                             "epochs": cfg.eval_epochs, **cfg.eval_set})
    manifest = sweep_dir / MANIFEST
    if manifest.exists():
        before = read_json(manifest).get("config", {})
        if before.get("experiment") != EXPERIMENT:
            raise UsageError(f"{sweep_dir} holds another experiment; give --name or --out")
    resolved = asdict(cfg)
    log(f"reproduce claims: {len(trials)} searches in {sweep_dir}")
    log("resolved config: " + json.dumps(resolved, default=str))
    with ray_session(resources.address, join_timeout=resources.join_timeout,
                     env_vars=worker_env(max(resources.cpus_per_trial, cfg.eval_cpus))):
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"config": resolved, "trials": [t.trial_id for t in trials]})
        launcher = None if cfg.skip_eval else Launcher(
            Settings(eval_cpus=cfg.eval_cpus, eval_gpus=cfg.eval_gpus),
            lambda run: eval_overrides(cfg, run), log, plan=plan_for(cfg))
        run_sweep(spec, cfg.out, resources, quiet=quiet, log=log,
                  on_finished=launcher.submit if launcher else None)
        failed = launcher.wait() if launcher else []
    for line in failed:
        log(f"training from scratch failed: {line}")
    if not cfg.skip_eval:
        finish_rankcorr(cfg, [RunFolder(t.run_dir) for t in trials], log)
    written = write_report(sweep_dir)
    log(f"report: {written[0]}")
    return sweep_dir


def finish_rankcorr(cfg: ClaimsConfig, runs: list[RunFolder],
                    log: Callable[[str], None]) -> None:
    """Kendall's tau per stage of every finished PAD-NAS run whose trainings are done."""
    from nasbench_suite import rankcorr
    from nasbench_suite.store.evalfolder import EvalFolder

    settings = rankcorr_settings(cfg)
    for run in runs:
        if run.status() != FINISHED or run.config_dict().get("method") != "padnas":
            continue
        if not run.kept_checkpoints():
            log(f"rankcorr {run.name}: no stage checkpoints (not measurable)")
            continue
        if run.has_rankcorr() and run.rankcorr().archs == settings.archs:
            continue
        planned = rankcorr.plan(run, settings)
        if all(EvalFolder(folder).done() for _, _, folder in planned):
            result = rankcorr.finish(run, settings)
            log(f"rankcorr {run.name}: tau per stage {result.tau}")
