"""The protocol control of darts-failure: can its training from scratch tell cells apart?

An accuracy from scratch says nothing about a search unless the protocol that measures it
separates a known-bad cell from a known-good one. Before any verdict the experiment trains,
under exactly its own protocol (the evaluation preset, epochs, depth and ``eval_set`` of the
searches' architectures, nasbench_suite.experiments.darts_failure.experiment.eval_overrides):

* ``all-skip``: every edge a skip connection (restricted: each node takes c_{k-2} and c_{k-1}
  through skips, the cell DARTS collapses to; relaxed: every edge of every cell a skip);
* ``darts-v2``: the published DARTS (2nd order) CIFAR-10 cell (quark0/darts genotypes.py),
  in the restricted space. In the relaxed skeleton at the same depth it is the same network
  (both spaces build DARTS's NetworkCIFAR), so it is trained once and compared with both
  spaces' all-skip cells;
* ``randomN``: ``control_cells`` random cells per space, drawn uniformly from the space
  (restricted: iid scores through DARTS's derivation, i.e. a uniform pair of inputs per node
  and a uniform non-zero op per kept edge; relaxed: each (input, op) pair of each node kept
  with probability 1/2, a node drawn again while it has none), fixed by their index and the
  same for every training seed;

each over the experiment's seeds. :func:`separation` decides whether the protocol separates
all-skip from DARTS V2 *beyond the seeds' spread*: every DARTS V2 seed above every all-skip
seed (the ranges do not overlap). If not, the protocol must be raised (more epochs, larger
images, more channels: ``--eval-epochs``, ``--eval-set image_size=...``) until it does.
The trainings land in ``<experiment>/control/<space>-<label>-s<seed>/`` (store.evalfolder).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_suite.store.evalfolder import EvalFolder

CONTROL = "control"
ALL_SKIP, DARTS_V2_LABEL = "all-skip", "darts-v2"
#: the spaces whose cells the control trains
CONTROL_SPACES = ("restricted", "relaxed")
#: verdict words
SEPARATED, NOT_SEPARATED, NOT_MEASURED = "separated", "not separated", "not measured"


def control_genotypes(space_name: str, layers: int, n_random: int) -> list[tuple[str, Any]]:
    """(label, genotype) of the control cells of one space at ``layers`` cells."""
    import torch

    from nasbench_suite.spaces import DARTS_V2, NetShape, create_space
    from nasbench_suite.spaces.ops import DARTS_OPS

    space = create_space(space_name, NetShape(8, layers, 3, 10, 32), DARTS_OPS if
                         space_name == "restricted" else None)
    skip = space.ops.index("skip_connect")
    cells: list[tuple[str, Any]] = []
    if space_name == "restricted":
        scores = torch.full(space.layout.shape, -1.0)
        scores[..., skip] = 1.0
        # every edge ties: DARTS's derivation keeps the first two inputs, c_{k-2} and c_{k-1}
        cells.append((ALL_SKIP, space.derive(scores)))
        cells.append((DARTS_V2_LABEL, DARTS_V2))
    else:
        keep = torch.zeros(space.layout.shape, dtype=torch.bool)
        keep[..., skip] = True
        cells.append((ALL_SKIP, space.genotype_from_mask(keep)))
    for i in range(n_random):
        gen = torch.Generator().manual_seed(1_000 + i)
        cells.append((f"random{i}", random_genotype(space, gen)))
    return cells


def random_genotype(space: Any, gen: Any) -> Any:
    """A cell drawn uniformly from ``space`` (module docstring)."""
    import torch

    if not space.capabilities.multi_op_edges:
        return space.derive(torch.randn(space.layout.shape, generator=gen))
    nonzero = space.nonzero_mask()
    keep = torch.zeros(space.layout.shape, dtype=torch.bool)
    for g in range(len(space.layout.groups)):
        for node in space.layout.node_ids:
            ids = space.layout.node_edges(node)
            while not keep[g, ids].any():
                keep[g, ids] = (torch.rand((len(ids), len(space.ops)), generator=gen) < 0.5) \
                    & nonzero
    return space.genotype_from_mask(keep)


def control_folder(sweep_dir: Path, space: str, label: str, seed: int) -> Path:
    return sweep_dir / CONTROL / f"{space}-{label}-s{seed}"


def control_plan(sweep_dir: Path, layers: dict[str, int], n_random: int,
                 seeds: list[int]) -> list[tuple[str, str, int, Any, Path]]:
    """(space, label, seed, genotype, folder) of every training of the control."""
    plan = []
    for space in CONTROL_SPACES:
        for label, genotype in control_genotypes(space, layers[space], n_random):
            for seed in seeds:
                plan.append((space, label, seed, genotype,
                             control_folder(sweep_dir, space, label, seed)))
    return plan


def train_control(label: str, genotype_json: str, overrides: dict[str, Any], threads: int,
                  out_dir: str) -> str:
    """One training of the control into ``out_dir`` (a Ray task). The DARTS op list lets
    every control cell build in either skeleton (it fixes the cost table, not the network)."""
    import torch

    from nasbench_suite.spaces import Genotype
    from nasbench_suite.spaces.ops import DARTS_OPS
    from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch

    torch.set_num_threads(max(1, threads))
    cfg = resolve_eval_config({**overrides, "threads": max(1, threads)})
    return str(train_from_scratch(cfg, label, Genotype.from_json(genotype_json), DARTS_OPS,
                                  progress=False, log=lambda line: None,
                                  run_dir=Path(out_dir)))


# -- the report --------------------------------------------------------------------------------
def collect_control(sweep_dir: Path) -> pd.DataFrame:
    """One row per finished training of the control: space, cell, seed, test accuracy."""
    rows = []
    root = sweep_dir / CONTROL
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not EvalFolder(folder).done():
            continue
        result = EvalFolder(folder).result()
        space = folder.name.split("-", 1)[0]
        rows.append({"space": space, "cell": result.label, "seed": result.seed,
                     "test_acc": result.test_acc, "mmacs": result.macs / 1e6,
                     "train_time_s": result.train_time_s})
    return pd.DataFrame(rows, columns=["space", "cell", "seed", "test_acc", "mmacs",
                                       "train_time_s"])


def separation(bad: list[float], good: list[float]) -> str:
    """Whether ``good`` (DARTS V2's seeds) lies above ``bad`` (all-skip's) beyond the seeds'
    spread: every good seed above every bad one. Fewer than 2 seeds of either: not measured
    (one seed has no spread)."""
    if len(bad) < 2 or len(good) < 2:
        return NOT_MEASURED
    return SEPARATED if min(good) > max(bad) else NOT_SEPARATED


def control_verdicts(frame: pd.DataFrame) -> dict[str, str]:
    """space -> the verdict on its all-skip cell against DARTS V2."""
    v2 = frame[frame["cell"] == DARTS_V2_LABEL]["test_acc"].tolist()
    return {space: separation(frame[(frame["space"] == space) & (frame["cell"] == ALL_SKIP)]
                              ["test_acc"].tolist(), v2)
            for space in CONTROL_SPACES if (frame["space"] == space).any()}


def control_markdown(frame: pd.DataFrame) -> str:
    """The control's table (mean ± std and range over seeds per cell) and its verdicts."""
    if frame.empty:
        return ""
    rows = []
    for (space, cell), group in frame.groupby(["space", "cell"], sort=False):
        acc = group["test_acc"]
        std = float(acc.std(ddof=1)) if len(acc) > 1 else math.nan
        rows.append({"space": space, "cell": cell, "seeds": str(len(acc)),
                     "acc from scratch": f"{acc.mean():.3f} ± {std:.3f}" if len(acc) > 1
                     else f"{acc.mean():.3f}",
                     "range": f"{acc.min():.3f}-{acc.max():.3f}",
                     "MFLOPs": f"{group['mmacs'].iloc[0]:.2f}"})
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    verdicts = control_verdicts(frame)
    lines = [f"- {space}: all-skip vs DARTS V2: **{verdict}**" for space, verdict in
             verdicts.items()]
    randoms = frame[frame["cell"].str.startswith("random")]
    for space, group in randoms.groupby("space", sort=False):
        means = group.groupby("cell")["test_acc"].mean()
        lines.append(f"- {space}: {len(means)} random cells, seed-mean accuracies "
                     f"{means.min():.3f}-{means.max():.3f}")
    return (table + "\n\n" + "\n".join(lines) + "\n\nSeparated: every DARTS V2 seed above "
            "every all-skip seed (the seeds' ranges do not overlap). Where not separated, this "
            "protocol cannot support a verdict from accuracy from scratch; raise it (more "
            "epochs, larger images, more channels). MFLOPs here are the trained network's "
            "(the evaluation width), not the search network's of the tables above.\n")


__all__ = ["ALL_SKIP", "CONTROL", "DARTS_V2_LABEL", "NOT_MEASURED", "NOT_SEPARATED", "SEPARATED",
           "collect_control", "control_genotypes", "control_markdown", "control_plan",
           "control_verdicts", "random_genotype", "separation", "train_control"]
