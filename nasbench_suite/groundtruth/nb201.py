"""NAS-Bench-201's published accuracies of all 15,625 cells: the one reader of the table.

Why one module: a search in the nb201 space is scored against ground truth instead of a
training run, so every consumer (``nasbench lookup``, the search loop, the results index)
must read the same numbers the same way. The table ships inside the package
(``nb201.csv.gz``, rebuilt byte for byte from the published CSVs by
:mod:`nasbench_suite.groundtruth.build`; provenance and licence in README.md beside it) and is
verified against :data:`NB201_SHA256` before it is read, so a damaged or edited copy is an
error rather than silently wrong ground truth.

Accuracies are percent, as published (200-epoch training, averaged over the benchmark's
seeds). CIFAR-10 is the benchmark's ``cifar10-valid`` setting: ``cifar10_valid`` is measured
on the held-out half of the CIFAR-10 training set, the column the literature's NAS-Bench-201
tables quote for CIFAR-10 (with the test columns for CIFAR-100 and ImageNet16-120).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_suite.errors import UsageError
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.nb201_arch import (
    arch_to_genotype,
    format_arch,
    genotype_to_arch,
    parse_arch,
)

#: the shipped table, and the sha256 of its bytes (checked on every load)
NB201_TABLE = Path(__file__).resolve().parent / "nb201.csv.gz"
NB201_SHA256 = "bbfcf46623a26a02b5ae44365a83f6cf0525f3aa4127e21c91a3ad7c9f503770"

#: the number of cells in the space (5 ops on each of 6 edges)
CELLS = 15_625

#: the accuracy columns of the table (percent)
ACCURACIES: tuple[str, ...] = ("cifar10_train", "cifar10_valid", "cifar10_test",
                               "cifar100_valid", "cifar100_test", "imagenet16_valid",
                               "imagenet16_test")

#: the column the percentile ranks by
RANK_COLUMN = "cifar10_valid"


@dataclass(frozen=True)
class Truth:
    """The published accuracies (percent) of one cell and where it ranks.

    ``percentile`` is the share, in percent, of the 15,625 cells whose CIFAR-10 validation
    accuracy is at most this cell's: ``100 * #{c : valid(c) <= valid(this)} / 15625``. So the
    best cell is at 100, a cell that beats or ties half of the space is at 50, and cells with
    equal accuracy share a percentile (the highest rank of their tie).
    """

    arch: str
    cifar10_valid: float
    cifar10_test: float
    cifar100_test: float
    imagenet16_test: float
    percentile: float

    @classmethod
    def from_record(cls, columns: dict[str, Any]) -> Truth:
        """The Truth of :func:`record`'s flat ``gt_*`` columns (a run's summary keeps those,
        so that ``show`` prints what the run recorded, not what the table says today)."""
        return cls(**{f.name: columns[f"gt_{f.name}"] for f in fields(cls)})


def _verified_bytes(path: Path, sha256: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the NAS-Bench-201 table {path}: "
                         f"{exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise UsageError(f"the NAS-Bench-201 table {path} fails its checksum (sha256 "
                         f"{digest[:12]}..., expected {sha256[:12]}...); reinstall "
                         f"nasbench-suite or rebuild it: python -m "
                         f"nasbench_suite.groundtruth.build SRC_DIR")
    return data


@functools.lru_cache(maxsize=4)
def _table(path: str, sha256: str) -> pd.DataFrame:
    """The verified table indexed by arch string, with the ``percentile`` column added.
    Cached per (path, checksum): a failed load raises and so is never cached."""
    data = _verified_bytes(Path(path), sha256)
    table = pd.read_csv(io.BytesIO(data), compression="gzip")
    if len(table) != CELLS or not table["arch"].is_unique:
        raise UsageError(f"the NAS-Bench-201 table {path} does not hold {CELLS} distinct cells")
    # rank(method="max") is #{c : valid(c) <= valid(this)}: see Truth
    table["percentile"] = 100.0 * table[RANK_COLUMN].rank(method="max") / len(table)
    return table.set_index("arch", drop=False)


def load_table(path: str | Path | None = None, sha256: str = NB201_SHA256) -> pd.DataFrame:
    """The table of all 15,625 cells, indexed by arch string: ``file_id``, ``arch``, the
    :data:`ACCURACIES` columns and ``percentile`` (see :class:`Truth`).

    Read once and cached; each call returns a copy so that a caller that edits its frame
    cannot change what everyone else reads. ``path`` reads another copy of the table (it
    must still pass ``sha256``); a missing file or a failed checksum is a UsageError naming
    the file.
    """
    return _table(str(Path(path or NB201_TABLE).resolve()), sha256).copy()


def arch_of(arch_or_genotype: str | Genotype) -> str:
    """The canonical arch string of an arch string or an ``nb201`` Genotype; ValueError for
    anything that is not one cell of the space (another space, several ops on one edge)."""
    if isinstance(arch_or_genotype, Genotype):
        return genotype_to_arch(arch_or_genotype)
    return format_arch(parse_arch(arch_or_genotype))


def lookup(arch_or_genotype: str | Genotype, path: str | Path | None = None,
           sha256: str = NB201_SHA256) -> Truth:
    """The published accuracies of one cell, given its arch string or its Genotype."""
    arch = arch_of(arch_or_genotype)
    row = _table(str(Path(path or NB201_TABLE).resolve()), sha256).loc[arch]
    return Truth(arch=arch, cifar10_valid=float(row["cifar10_valid"]),
                 cifar10_test=float(row["cifar10_test"]),
                 cifar100_test=float(row["cifar100_test"]),
                 imagenet16_test=float(row["imagenet16_test"]),
                 percentile=float(row["percentile"]))


def record(genotype: Genotype) -> dict[str, Any]:
    """The ground truth of a genotype as flat ``gt_*`` columns, for a results row."""
    truth = lookup(genotype)
    return {"gt_arch": truth.arch, "gt_cifar10_valid": truth.cifar10_valid,
            "gt_cifar10_test": truth.cifar10_test, "gt_cifar100_test": truth.cifar100_test,
            "gt_imagenet16_test": truth.imagenet16_test, "gt_percentile": truth.percentile}


def stratified_cells(n: int, seed: int, column: str = RANK_COLUMN,
                     path: str | Path | None = None) -> list[str]:
    """``n`` arch strings spread over the whole accuracy range of ``column``, one per
    stratum from the lowest accuracies to the highest.

    Why stratified: a rank correlation over cells drawn uniformly would mostly compare the
    crowd of mediocre cells and say little about the good and the broken ones a supernet
    must tell apart. The cells sorted by ``column`` (ties by arch string, so the order never
    depends on the file's row order) are cut at the quantiles k/n into ``n`` strata of equal
    size (+-1 cell); one cell is drawn uniformly from each with ``numpy.random.
    default_rng(seed)``. A pure function of (n, seed) over the table: every method and seed
    of a comparison is measured on the same cells.
    """
    if not 2 <= n <= CELLS:
        raise ValueError(f"n must be in 2..{CELLS} (a rank correlation over distinct cells), "
                         f"got {n}")
    if column not in ACCURACIES:
        raise ValueError(f"unknown column {column!r}; choose from {', '.join(ACCURACIES)}")
    table = load_table(path).reset_index(drop=True)
    order = table.sort_values([column, "arch"], kind="stable")["arch"].to_numpy()
    bounds = np.linspace(0, len(order), n + 1).round().astype(int)
    rng = np.random.default_rng(seed)
    return [str(order[rng.integers(lo, hi)]) for lo, hi in itertools.pairwise(bounds)]


def stratified_genotypes(n: int, seed: int) -> list[Genotype]:
    """:func:`stratified_cells` as genotypes of the space (what a supernet evaluates)."""
    return [arch_to_genotype(arch) for arch in stratified_cells(n, seed)]


def expected_max_curve(values: np.ndarray | list[float], k_max: int) -> np.ndarray:
    """``E[max]`` of ``k`` values drawn uniformly at random WITHOUT replacement from
    ``values``, for k = 1..k_max (element k-1), exactly.

    With the values sorted ascending, v_(1) <= ... <= v_(n), the largest of k draws is
    v_(i) with probability [C(i,k) - C(i-1,k)] / C(n,k) = C(i-1,k-1) / C(n,k) (the other
    k-1 draws come from the i-1 below it; ties change nothing, as equal values give equal
    maxima). That weight is (k/n) * prod_{j=1..k-1} (i-j)/(n-j), built up one factor per k:
    every factor lies in [0, 1], so nothing overflows, no huge binomials are subtracted, and
    each weight carries at most about 2k rounding errors (relative error ~ k * 2.2e-16; the
    log-gamma route would lose ~1e-11, as log C(n,k) is ~1e5 at n = 15,625). Weights of
    cells below rank k come out exactly 0, as they must. On the CIFAR-10 column the result
    agrees with the exact rational sum to ~1e-16 relative (tests/test_groundtruth.py).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if not 1 <= k_max <= n:
        raise ValueError(f"k_max must be in 1..{n} (the number of values), got {k_max}")
    i = np.arange(1, n + 1, dtype=np.float64)
    product = np.ones(n)  # prod_{j=1..k-1} (i-j)/(n-j) for the current k; 0 for i < k
    curve = np.empty(k_max)
    for k in range(1, k_max + 1):
        if k > 1:
            product[k - 2] = 0.0
            product[k - 1:] *= (i[k - 1:] - (k - 1)) / (n - (k - 1))
        curve[k - 1] = (k / n) * float(np.dot(product[k - 1:], v[k - 1:]))
    return curve


def random_search_curve(k_max: int = 100, column: str = RANK_COLUMN,
                        path: str | Path | None = None) -> pd.Series:
    """The expected best ``column`` accuracy of random search that samples ``k`` distinct
    cells, k = 1..k_max: the baseline a NAS method in this space has to beat at equal cost.

    Without replacement, because random search over a finite table never pays twice for the
    same cell (with replacement the curve is slightly lower: by about 0.001 points of
    CIFAR-10 validation accuracy at k = 100 of 15,625 cells). Computed exactly, not by
    simulation: see :func:`expected_max_curve`. The Series is indexed by k and named after
    ``column``.
    """
    table = load_table(path)
    if column not in ACCURACIES:
        raise ValueError(f"unknown column {column!r}; choose from {', '.join(ACCURACIES)}")
    curve = expected_max_curve(table[column].to_numpy(), k_max)
    return pd.Series(curve, index=pd.RangeIndex(1, k_max + 1, name="k"), name=column)
