"""NAS-Bench-201's ground truth: the shipped table is the published one, read the same way
everywhere, and the figures the literature quotes come out of it (all-skip 39.77, best
91.61, median 87.30); the random-search baseline is the exact expectation."""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from nasbench_suite.spaces import DARTS_V2, CellGenotype, Genotype
from nasbench_suite.spaces.nb201_arch import (
    NB201_EDGES,
    NB201_OPS,
    arch_to_genotype,
    format_arch,
    parse_arch,
)

from nasbench_suite.cli.main import main
from nasbench_suite.errors import UsageError
from nasbench_suite.groundtruth import GT_COLUMNS, ground_truth
from nasbench_suite.groundtruth.build import build_bytes
from nasbench_suite.groundtruth.build import main as build_main
from nasbench_suite.groundtruth.nb201 import (
    CELLS,
    NB201_SHA256,
    NB201_TABLE,
    Truth,
    expected_max_curve,
    load_table,
    lookup,
    random_search_curve,
)
from nasbench_suite.store.runfolder import RunFolder, RunInfo

SHARED_CSVS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
ALL_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
            "+|skip_connect~0|skip_connect~1|skip_connect~2|")
#: NAS-Bench-201's best cell by CIFAR-10 validation accuracy (published file id 6111)
BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")


@pytest.fixture(scope="module")
def table():
    return load_table()


# -- the file ----------------------------------------------------------------------------------
def test_the_shipped_file_passes_its_checksum() -> None:
    assert hashlib.sha256(NB201_TABLE.read_bytes()).hexdigest() == NB201_SHA256


def test_the_licence_and_attribution_travel_with_the_table() -> None:
    folder = NB201_TABLE.parent
    assert "Apache License" in (folder / "LICENSE-NASGraph-Public").read_text()
    notice = (folder / "README.md").read_text()
    for needle in ("Zhenhan-Huang/NASGraph-Public", "1f8fd621c60a48728fcc890818b6b94eee62e4dc",
                   "Apache License 2.0", "ICLR 2020", NB201_SHA256):
        assert needle in notice


@pytest.mark.skipif(not SHARED_CSVS.is_dir(), reason="the published CSVs are not here")
def test_the_build_script_rebuilds_the_shipped_file_byte_for_byte() -> None:
    assert build_bytes(SHARED_CSVS) == NB201_TABLE.read_bytes()


@pytest.mark.skipif(not SHARED_CSVS.is_dir(), reason="the published CSVs are not here")
def test_the_build_script_refuses_an_edited_source(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for csv in SHARED_CSVS.glob("*.csv"):
        shutil.copyfile(csv, tmp_path / csv.name)
    assert build_main([str(tmp_path), "--check"]) == 0
    assert "matches the shipped" in capsys.readouterr().out
    edited = tmp_path / "nasbench201_cifar100.csv"
    edited.write_text(edited.read_text().replace("52.913333294677734", "62.913333294677734"))
    with pytest.raises(UsageError, match="is not the published"):
        build_bytes(tmp_path)
    assert build_main([str(tmp_path), "--check"]) == 2


def test_a_flipped_byte_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    data = bytearray(NB201_TABLE.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "nb201.csv.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="fails its checksum") as info:
        load_table(bad)
    message = str(info.value)
    assert str(bad) in message and "\n" not in message
    with pytest.raises(UsageError, match="fails its checksum"):
        lookup(ALL_SKIP, path=bad)


def test_a_good_copy_reads_and_a_missing_one_is_a_usage_error(tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv.gz"
    shutil.copyfile(NB201_TABLE, copy)
    assert lookup(ALL_SKIP, path=copy) == lookup(ALL_SKIP)
    with pytest.raises(UsageError, match="cannot read"):
        load_table(tmp_path / "absent.csv.gz")


# -- the table ---------------------------------------------------------------------------------
def test_every_cell_of_the_space_once(table) -> None:
    assert len(table) == CELLS and table["arch"].is_unique
    every = {format_arch(ops) for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES))}
    assert set(table["arch"]) == every
    assert table["file_id"].tolist() == list(range(CELLS))


def test_every_arch_string_round_trips(table) -> None:
    for arch in table["arch"]:
        assert format_arch(parse_arch(arch)) == arch


def test_the_published_figures(table) -> None:
    assert round(lookup(ALL_SKIP).cifar10_valid, 2) == 39.77
    assert round(table["cifar10_valid"].max(), 2) == 91.61
    assert round(table["cifar10_valid"].median(), 2) == 87.30
    assert table["cifar10_valid"].idxmax() == BEST
    assert int(table.loc[BEST, "file_id"]) == 6111
    # accuracies are percent, every column within 0..100 and no NaN
    accuracies = table.drop(columns=["file_id", "arch", "percentile"])
    assert accuracies.notna().all().all()
    assert ((accuracies >= 0) & (accuracies <= 100)).all().all()


def test_lookup_returns_the_row_of_its_cell(table) -> None:
    truth = lookup(BEST)
    row = table.loc[BEST]
    assert truth == Truth(BEST, row["cifar10_valid"], row["cifar10_test"],
                          row["cifar100_test"], row["imagenet16_test"], 100.0)
    assert round(truth.cifar10_test, 2) == 91.09
    assert lookup(f"  {BEST}\n") == truth  # canonicalised, not matched as typed


def test_the_percentile_is_the_share_at_or_below(table) -> None:
    values = table["cifar10_valid"].to_numpy()
    assert lookup(BEST).percentile == 100.0
    worst = table["cifar10_valid"].idxmin()
    assert lookup(worst).percentile == 100.0 / CELLS
    # cells cut off from the output read the same: a tie shares the highest rank of its group
    tied_value = table["cifar10_valid"].value_counts().idxmax()
    tied = table.index[table["cifar10_valid"] == tied_value]
    assert len(tied) > 1
    at_or_below = 100.0 * np.count_nonzero(values <= tied_value) / CELLS
    assert {lookup(arch).percentile for arch in tied} == {at_or_below}
    for arch in (ALL_SKIP, table["arch"].iloc[0], table["arch"].iloc[777]):
        expected = 100.0 * np.count_nonzero(values <= table.loc[arch, "cifar10_valid"]) / CELLS
        assert lookup(arch).percentile == pytest.approx(expected, abs=1e-12)


def test_lookup_takes_a_genotype_and_refuses_other_cells() -> None:
    assert lookup(arch_to_genotype(BEST)) == lookup(BEST)
    two_ops = Genotype("nb201", {"cell": CellGenotype(
        (("skip_connect", 0, 1), ("nor_conv_3x3", 0, 1)), (3,))})
    with pytest.raises(ValueError, match="holds skip_connect and nor_conv_3x3"):
        lookup(two_ops)
    with pytest.raises(ValueError, match="not a NAS-Bench-201 cell"):
        lookup(DARTS_V2)
    with pytest.raises(ValueError, match="unknown op 'sep_conv_3x3'"):
        lookup(ALL_SKIP.replace("skip_connect~2", "sep_conv_3x3~2"))


def test_load_table_hands_out_copies() -> None:
    mine = load_table()
    mine.loc[BEST, "cifar10_valid"] = 0.0
    assert load_table().loc[BEST, "cifar10_valid"] > 91.6
    assert lookup(BEST).cifar10_valid > 91.6


# -- the random-search baseline ----------------------------------------------------------------
def test_expected_max_matches_enumeration_with_ties() -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]
    curve = expected_max_curve(values, len(values))
    for k in range(1, len(values) + 1):
        draws = list(itertools.combinations(values, k))
        assert curve[k - 1] == pytest.approx(sum(map(max, draws)) / len(draws), rel=1e-14)


def test_the_curve_is_exact_at_its_ends_and_in_between(table) -> None:
    values = table["cifar10_valid"].to_numpy()
    curve = random_search_curve(100)
    assert curve.index[0] == 1 and curve.index[-1] == 100 and curve.name == "cifar10_valid"
    assert curve[1] == pytest.approx(values.mean(), rel=1e-14)
    assert (np.diff(curve.to_numpy()) > 0).all() and curve[100] < values.max()
    full = expected_max_curve(values, CELLS)
    assert full[-1] == values.max()
    # k = 100 against the exact rational sum of C(i-1, k-1) / C(n, k) * v_(i)
    k, ordered = 100, np.sort(values)
    exact = sum(Fraction(math.comb(i - 1, k - 1)) * Fraction(float(v))
                for i, v in enumerate(ordered, start=1)) / math.comb(CELLS, k)
    assert curve[k] == pytest.approx(float(exact), rel=1e-13)


def test_the_curve_agrees_with_a_seeded_simulation(table) -> None:
    values = table["cifar10_valid"].to_numpy()
    rng = np.random.default_rng(0)
    k, trials = 10, 4000
    best = np.array([values[rng.choice(CELLS, size=k, replace=False)].max()
                     for _ in range(trials)])
    error = best.std(ddof=1) / math.sqrt(trials)
    assert abs(best.mean() - random_search_curve(k)[k]) < 4 * error


def test_the_curve_of_another_column_and_bad_arguments() -> None:
    cifar100 = random_search_curve(5, column="cifar100_test")
    assert cifar100.name == "cifar100_test"
    assert cifar100[1] == pytest.approx(load_table()["cifar100_test"].mean(), rel=1e-14)
    with pytest.raises(ValueError, match="unknown column"):
        random_search_curve(5, column="arch")
    with pytest.raises(ValueError, match="k_max"):
        random_search_curve(CELLS + 1)


# -- the registry ------------------------------------------------------------------------------
def test_ground_truth_is_flat_columns_or_none() -> None:
    record = ground_truth(arch_to_genotype(ALL_SKIP))
    assert record is not None and tuple(record) == GT_COLUMNS
    assert record["gt_arch"] == ALL_SKIP and round(record["gt_cifar10_valid"], 2) == 39.77
    assert record["gt_percentile"] == lookup(ALL_SKIP).percentile
    assert ground_truth(DARTS_V2) is None  # the restricted space has no table


# -- nasbench lookup ---------------------------------------------------------------------------
def _nb201_run(path: Path, arch: str) -> Path:
    info = RunInfo(layout=2, suite="test", created="now", dataset_id="digits",
                   groups=["cell"], ops=list(NB201_OPS),
                   edges=[list(edge) for edge in NB201_EDGES])
    run = RunFolder.create(path, "space: nb201\n", info)
    run.write_genotype(arch_to_genotype(arch))
    return path


def test_lookup_command_on_an_arch_a_genotype_file_and_a_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup", ALL_SKIP]) == 0
    out = capsys.readouterr().out
    assert "39.77" in out and ALL_SKIP in out

    genotype = tmp_path / "best.json"
    genotype.write_text(arch_to_genotype(BEST).to_json())
    assert main(["lookup", str(genotype)]) == 0
    out = capsys.readouterr().out
    assert "CIFAR-10 validation 91.61, test 91.09" in out and "percentile 100.00" in out

    assert main(["lookup", str(_nb201_run(tmp_path / "run", BEST))]) == 0
    assert "91.61" in capsys.readouterr().out
