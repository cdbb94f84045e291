"""`nasbench rankcorr RUN_DIR`: PAD-NAS's claim, measured on one of its runs.

PAD-NAS (Xia et al., 2020) claims that pruning makes one-shot accuracy a better predictor of
stand-alone accuracy: Kendall's tau between the two rises with each stage (0.498, 0.745,
0.888 for M = 2, 3, 4 over 30 architectures). This module measures it on a finished run
that kept one checkpoint per stage (nasbench_suite.methods.padnas: ``checkpoints/stage-N.pt``):

1. ``archs`` architectures are drawn once, with a seeded generator, uniformly from the
   *unpruned* space in PAD-NAS's own encoding (methods.padnas_search.Encoding over every
   non-zero op; a node takes the space's number of inputs), keeping only those inside the
   run's cost window (its relative or absolute bounds on multiply-adds; a latency run's
   relative bounds are applied to multiply-adds). The same architectures serve every stage:
   whether a stage pruned an op one of them uses does not matter to a supernet that still
   holds that op's weights.
2. One-shot accuracy: each kept stage's supernet weights, loaded into the run's supernet
   (``prepare(run config)``), the architecture's network inheriting them, batch norm
   recalibrated on the run's calibration batches, accuracy on the run's scoring split.
3. Stand-alone accuracy: each architecture trained from scratch (training/scratch.py) with
   one short schedule, the same for all (``eval_epochs``, the mini evaluation preset, the
   run's image size, at the searched depth), in ``rankcorr/arch-N/`` of the run folder;
   finished trainings are skipped, interrupted ones resume. The test split is read once.
4. ``scipy.stats.kendalltau`` per stage, written to rankcorr.json (runfolder.RankCorr) with a
   figure (tau per stage; one-shot against stand-alone accuracy per stage).

In a space with a published table (nb201) the table replaces the trainings from scratch, for
any method's run: nasbench_suite.experiments.truthcorr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasbench_suite.config import check_positive, run_config
from nasbench_suite.errors import UsageError
from nasbench_suite.spaces import Genotype
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import FINISHED, RankCorr, RunFolder

#: the split one-shot accuracies are measured on
SPLIT = "score"


@dataclass
class RankCorrSettings:
    """What `nasbench rankcorr` measures: how many architectures, how long each trains."""

    archs: int = 30
    eval_epochs: int = 2
    #: None: the run's seed
    seed: int | None = None
    eval_set: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None

    def validate(self) -> None:
        if self.archs < 2:
            raise UsageError(f"--archs must be at least 2 (a rank correlation), got "
                             f"{self.archs}")
        check_positive(self, "eval_epochs", flags=True)


def check_run(run: RunFolder) -> list[str]:
    """The stages of a finished PAD-NAS run with kept checkpoints, or a UsageError."""
    run.check()
    config = run.config_dict()
    if config.get("method") != "padnas":
        raise UsageError(f"{run.path} is a {config.get('method')} run; rankcorr measures "
                         "PAD-NAS runs")
    if run.status() != FINISHED:
        raise UsageError(f"{run.path} has not finished")
    stages = kept_stages(run)
    if not stages:
        raise UsageError(f"{run.path} keeps no stage checkpoints (checkpoints/stage-N.pt)")
    return stages


def kept_stages(run: RunFolder) -> list[str]:
    """The run's kept per-stage checkpoints (``stage-N``, PAD-NAS), in stage order."""
    return sorted((n for n in run.kept_checkpoints() if n.startswith("stage-")),
                  key=lambda n: int(n.split("-")[1]) if n.split("-")[1].isdigit() else 0)


def _hp(run: RunFolder) -> Any:
    from nasbench_suite.config import build_dataclass
    from nasbench_suite.methods.padnas import PadNasConfig

    return build_dataclass(PadNasConfig, run.config_dict().get("hp") or {},
                           "padnas hyper-parameter")


def cost_window(run: RunFolder) -> tuple[float, float]:
    """The run's cost window in multiply-adds (module docstring)."""
    from nasbench_suite.methods.padnas_search import cost_range

    hp = _hp(run)
    if hp.cost == "flops" and hp.cost_bounds == "absolute":
        return float(hp.cost_min), float(hp.cost_max)
    space = run.space()
    layout = space.layout
    node_edges = [layout.node_edges(k + 2) for k in range(layout.nodes)]
    inputs = hp.inputs_per_node or space.capabilities.inputs_per_node
    candidates = layout.full_mask() & space.nonzero_mask()
    lo, hi = cost_range(space.cost.group_flops() / 2, space.cost.fixed_flops / 2, node_edges,
                        inputs, candidates)
    if hp.cost_bounds == "absolute":  # latency bounds: not in multiply-adds; use [0.1, 0.9]
        return lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo)
    return lo + hp.cost_min * (hi - lo), lo + hp.cost_max * (hi - lo)


def sample_genotypes(run: RunFolder, n: int, seed: int,
                     max_draws: int = 1000) -> list[Genotype]:
    """``n`` distinct architectures, uniform in PAD-NAS's encoding of the unpruned space,
    inside the cost window; the same (run, n, seed) always gives the same list."""
    from nasbench_suite.methods.padnas_search import Encoding

    hp = _hp(run)
    space = run.space()
    layout = space.layout
    node_edges = [layout.node_edges(k + 2) for k in range(layout.nodes)]
    inputs = hp.inputs_per_node or space.capabilities.inputs_per_node
    enc = Encoding(layout.full_mask() & space.nonzero_mask(), node_edges, inputs)
    lo, hi = cost_window(run)
    rng = np.random.default_rng(seed)
    found: dict[str, Genotype] = {}
    for _ in range(n * max_draws):
        mask = enc.decode(enc.sample(rng.random(len(enc))))
        genotype = space.genotype_from_mask(mask)
        if lo <= space.genotype_cost(genotype).macs <= hi:
            found.setdefault(genotype.to_json(), genotype)
        if len(found) == n:
            return list(found.values())
    raise UsageError(f"only {len(found)} distinct architectures of {n} fall in the cost "
                     f"window [{lo:.4g}, {hi:.4g}] multiply-adds; ask for fewer --archs")


def plan(run: RunFolder, settings: RankCorrSettings) -> list[tuple[str, Genotype, Path]]:
    """(label, genotype, folder) of every stand-alone training the measurement needs."""
    seed = settings.seed if settings.seed is not None else int(run.config_dict()["seed"])
    genotypes = sample_genotypes(run, settings.archs, seed)
    return [(f"rankcorr-{i}", g, run.rankcorr_eval_dir(i)) for i, g in enumerate(genotypes)]


def eval_overrides(run: RunFolder, settings: RankCorrSettings) -> dict[str, Any]:
    """One short schedule for every architecture of the run: the mini evaluation preset,
    ``eval_epochs``, the run's dataset, seed, image size and depth."""
    config = run.config_dict()
    out: dict[str, Any] = {"preset": "mini", "dataset": config["dataset"],
                           "seed": config["seed"], "epochs": settings.eval_epochs,
                           "restricted_layers": config["layers"]}
    for key in ("image_size", "data_dir"):
        if config.get(key) is not None:
            out[key] = config[key]
    if settings.threads:
        out["threads"] = settings.threads
    return {**out, **settings.eval_set}


def oneshot_accuracies(run: RunFolder, stages: list[str], genotypes: list[Genotype],
                       load: Callable[[str], dict[str, Any]] | None = None
                       ) -> dict[str, list[float]]:
    """stage -> the genotypes' inherited, BN-recalibrated accuracy on the scoring split.

    ``load(stage)`` gives the saved state whose supernet weights the stage is measured with
    (default: the run's kept checkpoint of that name). The supernet is the run's own method's
    (its auxiliary head as the run had it), so any method's run can be measured.
    """
    from nasbench_suite.training.inherit import calibration_batches, inherited_accuracy
    from nasbench_suite.training.loop import prepare

    cfg = run_config(run)
    search = prepare(cfg)
    supernet = search.space.supernet(
        auxiliary=search.method_cls.uses_auxiliary(search.cfg.hp))
    supernet.to(search.device)
    calib = calibration_batches(search.train, cfg.batch_size, cfg.bn_calib_batches, cfg.seed,
                                search.device)
    out: dict[str, list[float]] = {}
    for stage in stages:
        supernet.load_state_dict((load or run.load_kept)(stage)["supernet"])
        out[stage] = [inherited_accuracy(search.space, supernet, g, calib,
                                         search.splits.score, cfg.eval_batch_size,
                                         search.device) for g in genotypes]
    return out


def kendall(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """scipy.stats.kendalltau (tau-b), None where undefined (a constant list)."""
    from scipy.stats import kendalltau

    result = kendalltau(x, y)
    tau, p = float(result.statistic), float(result.pvalue)
    return (None if np.isnan(tau) else tau), (None if np.isnan(p) else p)


def finish(run: RunFolder, settings: RankCorrSettings) -> RankCorr:
    """One-shot accuracies, Kendall's tau per stage, rankcorr.json and its figure, once every
    stand-alone training of :func:`plan` has its result."""
    stages = check_run(run)
    planned = plan(run, settings)
    missing = [label for label, _, folder in planned if not EvalFolder(folder).done()]
    if missing:
        raise UsageError(f"{run.path}: {len(missing)} stand-alone training(s) missing "
                         f"({missing[0]}, ...)")
    genotypes = [g for _, g, _ in planned]
    standalone = [EvalFolder(folder).result().test_acc for _, _, folder in planned]
    oneshot = oneshot_accuracies(run, stages, genotypes)
    taus = {s: kendall(oneshot[s], standalone) for s in stages}
    space_cost = run.space()
    seed = settings.seed if settings.seed is not None else int(run.config_dict()["seed"])
    result = RankCorr(
        archs=settings.archs, seed=seed, eval_epochs=settings.eval_epochs, split=SPLIT,
        stages=stages, genotypes=[g.to_dict() for g in genotypes],
        macs=[space_cost.genotype_cost(g).macs for g in genotypes], oneshot=oneshot,
        standalone=standalone, tau={s: t for s, (t, _) in taus.items()},
        p_value={s: p for s, (_, p) in taus.items()}, cost_window=list(cost_window(run)))
    run.write_rankcorr(result)
    write_figure(run, result)
    return result


def write_figure(run: RunFolder, result: RankCorr) -> list[Path]:
    """Tau per stage, and one-shot against stand-alone accuracy per stage (PNG)."""
    import matplotlib.pyplot as plt

    from nasbench_suite.report.plots import save_figure

    fig = figure(result)
    folder, stem = run.rankcorr_figure()
    written = save_figure(fig, folder, stem, ("png",))
    plt.close(fig)
    return written


def figure(result: RankCorr) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.stages)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.0), squeeze=False)
    ax = axes[0][0]
    taus = [np.nan if result.tau[s] is None else result.tau[s] for s in result.stages]
    ax.plot(range(1, n + 1), taus, marker="o")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xticks(range(1, n + 1))
    ax.set_ylim(-1, 1)
    ax.set_xlabel("stage")
    ax.set_ylabel("Kendall tau")
    ax.set_title(f"{result.archs} architectures")
    for i, stage in enumerate(result.stages, 1):
        ax = axes[0][i]
        ax.scatter(result.oneshot[stage], result.standalone, s=12)
        tau = result.tau[stage]
        ax.set_title(f"{stage}: tau {'n/a' if tau is None else f'{tau:.2f}'}")
        ax.set_xlabel(f"one-shot acc ({result.split} split)")
        if i == 1:
            ax.set_ylabel(f"stand-alone acc ({result.eval_epochs} epochs)")
    fig.tight_layout()
    return fig


def run_rankcorr(run_dir: str | Path, settings: RankCorrSettings,
                 log: Callable[[str], None] = print) -> RankCorr:
    """The whole measurement in this process: trainings (skipped when done), then tau."""
    from nasbench_suite.experiments.evals import train_one
    from nasbench_suite.training.scratch import resolve_eval_config

    settings.validate()
    run = RunFolder(run_dir)
    check_run(run)
    overrides = eval_overrides(run, settings)
    resolve_eval_config(overrides)  # a bad --eval-set fails before anything is trained
    planned = plan(run, settings)
    for i, (label, genotype, folder) in enumerate(planned, 1):
        if EvalFolder(folder).done():
            continue
        log(f"rankcorr: training {label} ({i}/{len(planned)})")
        train_one(str(run.path), label, genotype.to_json(), overrides,
                  settings.threads or torch.get_num_threads(), str(folder))
    result = finish(run, settings)
    for stage in result.stages:
        tau = result.tau[stage]
        log(f"{stage}: Kendall tau {'undefined' if tau is None else f'{tau:.3f}'}")
    return result
