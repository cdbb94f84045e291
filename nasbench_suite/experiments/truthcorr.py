"""`nasbench rankcorr RUN_DIR` in a space with a published table: does the supernet rank cells
as their real accuracy does?

A one-shot method is only as good as its supernet's ranking of architectures. Where a
table gives every cell's real accuracy (nb201), that ranking is measured directly instead of
by training a few architectures from scratch, for any method's finished run:

1. Cells: the space's fixed sample of ``cells`` cells for ``seed``, spread over the table's
   accuracy range (nasbench_suite.groundtruth.SAMPLES: stratified by the table's accuracy
   quantiles). It depends on (cells, seed) only, and the seed defaults to
   :data:`DEFAULT_SEED`, not the run's: every method and seed is ranked on the same cells.
2. One-shot accuracy: each cell's network inheriting the supernet's weights, batch norm
   recalibrated, on the run's scoring split (experiments.rankcorr.oneshot_accuracies, the
   search loop's own instruments). The weights: the finished run's final state
   (RunFolder.final_state: its newest checkpoint, which the loop keeps); a run that kept
   per-stage checkpoints (PAD-NAS: ``checkpoints/stage-N.pt``) is measured per stage, which
   is PAD-NAS's claim (tau rises with each stage) against the truth.
3. Kendall's tau and Spearman's rho (scipy.stats) between the one-shot accuracies and the
   table's CIFAR-10 validation accuracy, and the table accuracy of the supernet's top
   :data:`TOP` cells (what a search that trusted it would get), into truthcorr.json.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import FINISHED, RunFolder, TruthCorr

#: cells in a real measurement (a rank correlation over fewer says little)
DEFAULT_CELLS = 100
#: the default seed of the cell sample: one sample for every run of a comparison
DEFAULT_SEED = 0
#: the supernet's best cells whose table accuracy is reported
TOP = 5
#: the ground-truth column the one-shot accuracies are ranked against
COLUMN = "gt_cifar10_valid"
#: the split one-shot accuracies are measured on
SPLIT = "score"
#: the stage of a run without per-stage checkpoints: its final weights
FINAL = "final"


def _undefined_as_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def correlations(oneshot: list[float], truth: list[float]
                 ) -> tuple[float | None, float | None, float | None, float | None]:
    """(tau, tau's p, rho, rho's p): scipy.stats.kendalltau (tau-b) and spearmanr, None
    where undefined (constant accuracies: a supernet that tells no cell apart)."""
    from scipy.stats import kendalltau, spearmanr

    tau, rho = kendalltau(oneshot, truth), spearmanr(oneshot, truth)
    return (_undefined_as_none(tau.statistic), _undefined_as_none(tau.pvalue),
            _undefined_as_none(rho.statistic), _undefined_as_none(rho.pvalue))


def top_cells(oneshot: list[float], k: int = TOP) -> list[int]:
    """Indices of the ``k`` highest one-shot accuracies, ties in sample order."""
    return sorted(range(len(oneshot)), key=lambda i: -oneshot[i])[:k]


def _stages(run: RunFolder) -> tuple[list[str], Callable[[str], dict[str, Any]]]:
    """The stages to measure and how to load each one's state (module docstring, 2)."""
    from nasbench_suite.experiments.rankcorr import kept_stages

    stages = kept_stages(run)
    if stages:
        return stages, run.load_kept
    state = run.final_state()  # checked before any cell is measured
    return [FINAL], lambda _: state


def measure(run_dir: str | Path, cells: int = DEFAULT_CELLS, seed: int = DEFAULT_SEED,
            log: Callable[[str], None] = print) -> TruthCorr:
    """The whole measurement on a finished run of a tabulated space; writes truthcorr.json
    and logs one line per stage."""
    from nasbench_suite.experiments.rankcorr import oneshot_accuracies
    from nasbench_suite.groundtruth import ground_truth, sample_cells, tabulated

    run = RunFolder(run_dir).check()
    space = run.config_dict().get("space")
    if not tabulated(space):
        raise UsageError(f"{run.path} searched the {space} space, which has no published "
                         "table")
    if run.status() != FINISHED:
        raise UsageError(f"{run.path} has not finished")
    genotypes = sample_cells(str(space), cells, seed)
    stages, load = _stages(run)
    truths = [ground_truth(g) or {} for g in genotypes]
    truth = [float(t[COLUMN]) for t in truths]
    log(f"rankcorr: {len(genotypes)} cells x {len(stages)} stage(s) with inherited weights")
    oneshot = oneshot_accuracies(run, stages, genotypes, load)
    stats = {s: correlations(oneshot[s], truth) for s in stages}
    top = {s: top_cells(oneshot[s]) for s in stages}
    result = TruthCorr(
        cells=len(genotypes), seed=seed, split=SPLIT, column=COLUMN, stages=stages,
        genotypes=[g.to_dict() for g in genotypes], archs=[str(t["gt_arch"]) for t in truths],
        truth=truth, oneshot=oneshot, tau={s: v[0] for s, v in stats.items()},
        tau_p={s: v[1] for s, v in stats.items()}, rho={s: v[2] for s, v in stats.items()},
        rho_p={s: v[3] for s, v in stats.items()}, top=top,
        top_truth={s: [truth[i] for i in idx] for s, idx in top.items()})
    run.write_truthcorr(result)
    for line in describe(result):
        log(line)
    return result


def describe(result: TruthCorr) -> list[str]:
    """One line per stage: tau, rho and what the supernet's top cells are really worth."""

    def number(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    lines = []
    for stage in result.stages:
        top = result.top_truth[stage]
        lines.append(f"{stage}: Kendall tau {number(result.tau[stage])}, Spearman rho "
                     f"{number(result.rho[stage])} over {result.cells} cells (one-shot, "
                     f"{result.split} split, against the table's CIFAR-10 validation "
                     f"accuracy); the supernet's top {len(top)}: table mean "
                     f"{np.mean(top):.2f}%, best {max(top):.2f}% (best of the sample "
                     f"{max(result.truth):.2f}%)")
    return lines
