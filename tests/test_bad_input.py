"""One error boundary: bad input anywhere is one line on stderr, exit code 2, no traceback,
and nothing new on disk (the diverged run is the one exception: its folder records why).

Every case runs the real command line (in-process, through ``nasbench_suite.cli.main.main``)
against inputs made in a temporary folder: broken data files, corrupt run folders, unsafe
names, output paths that are files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from nasbench_suite.spaces import DARTS_V2

from nasbench_suite.cli.main import main
from nasbench_suite.groundtruth.nb201 import NB201_TABLE
from nasbench_suite.store.runfolder import RunFolder
from tests._results import tiny_results
from tests.conftest import TINY

ALL_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
            "+|skip_connect~0|skip_connect~1|skip_connect~2|")
TINY_ARGS = [f"--set={k}={v}" for k, v in TINY.items() if k != "epochs"] + ["--epochs", "1"]


@dataclasses.dataclass(frozen=True)
class Case:
    argv: list[str]
    message: str
    #: the run may leave its own failure record (a diverged search), nothing else
    records_failure: bool = False


def _npz(path: Path, x_train: np.ndarray, y_train: np.ndarray) -> None:
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_train[:4], y_test=y_train[:4])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every broken input the cases point at, made once."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(16) % 4
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    np.savez(root / "incomplete.npz", x_train=images)
    _npz(root / "negative.npz", images, labels - 2)
    nan = images.astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    _npz(root / "nan.npz", nan, labels)
    _npz(root / "oblong.npz", rng.integers(0, 255, (16, 8, 12, 3), dtype=np.uint8), labels)
    _npz(root / "channels-first.npz", rng.integers(0, 255, (16, 3, 16, 16), dtype=np.uint8),
         labels)
    (root / "broken.yaml").write_text("epochs: [1, 2\n")
    (root / "evil.yaml").write_text(
        f"epochs: !!python/object/apply:os.system ['touch {root}/pwned']\n")
    (root / "a-file").write_text("not a folder")
    (root / "empty-sweep.yaml").write_text("")
    # imagefolders: one with an empty train/, one with a corrupt PNG
    (root / "empty-folder" / "train").mkdir(parents=True)
    (root / "empty-folder" / "val" / "a").mkdir(parents=True)
    for name in ("a", "b"):
        for split in ("train", "val"):
            (root / "corrupt-png" / split / name).mkdir(parents=True)
            (root / "corrupt-png" / split / name / "x.png").write_bytes(b"\x89PNG broken")
    # genotypes
    (root / "genotype-99.json").write_text(
        '{"space": "restricted", "groups": {"normal": {"edges": [["skip_connect", 0, 2]], '
        '"concat": [2, 99]}, "reduce": {"edges": [["skip_connect", 0, 2]], '
        '"concat": [2]}}}')
    # corrupt copies of a finished run
    finished = next(p for p in sorted((tiny_results(tmp_path_factory) / "runs").iterdir())
                    if p.name.startswith("darts-restricted"))
    for name in ("bad-summary", "partial-summary", "bad-genotype", "bad-metrics",
                 "unfinished-bad-metrics", "empty-checkpoint", "evil-checkpoint",
                 "resumable"):
        shutil.copytree(finished, root / name)
    (root / "bad-summary" / "summary.json").write_text("{ not json")
    (root / "partial-summary" / "summary.json").write_text('{"method": "darts"}')
    (root / "bad-genotype" / "genotype.json").write_text('{"space": 3}')
    (root / "bad-metrics" / "metrics.jsonl").write_text('{"epoch": 0}\n{ broken\n')
    for name in ("unfinished-bad-metrics", "empty-checkpoint", "evil-checkpoint", "resumable"):
        (root / name / "summary.json").unlink()
    (root / "unfinished-bad-metrics" / "metrics.jsonl").write_text("[1, 2]\n")
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (root / "empty-checkpoint" / name).write_bytes(b"")

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {root}/pwned",))

    torch.save({"epoch": 1, "x": Evil()}, root / "evil-checkpoint" / "checkpoint.pt")
    (root / "evil-checkpoint" / "checkpoint.prev.pt").unlink(missing_ok=True)
    series = shutil.copytree(finished, root / "bad-series")
    # lookup: a run and a genotype of another space, two ops on one nb201 edge, a table
    # with a flipped byte
    shutil.copytree(finished, root / "restricted-run")
    (root / "restricted-genotype.json").write_text(DARTS_V2.to_json())
    (root / "two-ops.json").write_text(
        '{"space": "nb201", "groups": {"cell": {"edges": [["skip_connect", 0, 1], '
        '["nor_conv_3x3", 0, 1]], "concat": [3]}}}')
    table = bytearray(NB201_TABLE.read_bytes())
    table[1000] ^= 0x10
    (root / "nb201-flipped.csv.gz").write_bytes(bytes(table))
    (series / "series.json").write_text('[{"index": 0, "genotype": {"space": 3}}]')
    return root


def cases(root: Path) -> dict[str, Case]:
    out = str(root / "out")
    r = str(root)
    run = ["run", "--quiet", "--out", out]
    return {
        # run: names, numbers, config files
        "unknown method": Case([*run, "--method", "nope"], "unknown method"),
        "unknown space": Case([*run, "--space", "nope"], "unknown space"),
        "unknown dataset": Case([*run, "--dataset", "mnist"], "unknown dataset"),
        "unknown preset": Case([*run, "--preset", "huge"], "unknown preset"),
        "zero epochs": Case([*run, "--epochs", "0"], "epochs must be a positive"),
        "negative epochs": Case([*run, "--epochs", "-3"], "epochs must be a positive"),
        "zero batch": Case([*run, "--batch-size", "0"], "batch_size must be a positive"),
        "negative seed": Case([*run, "--seed", "-5"], "seed must be in [0, 2^32)"),
        "20-digit seed": Case([*run, "--seed", "12345678901234567890"],
                              "seed must be in [0, 2^32)"),
        "unknown field": Case([*run, "--set", "colour=red"], "unknown config field"),
        "mistyped field": Case([*run, "--set", "channels=wide"], "expected int"),
        "bad method field": Case([*run, "--set", "order=3"], "order must be 1 or 2"),
        "score portion": Case([*run, "--set", "score_portion=1.5"], "score_portion"),
        "bad device": Case([*run, "--device", "cuda:x"], "device must be"),
        "amp on cpu": Case([*run, "--amp", "--device", "cpu"], "--amp needs a CUDA device"),
        "impossible pair": Case([*run, "--method", "nse", "--space", "relaxed",
                                 "--set", "ops=[skip_connect,sep_conv_3x3]"],
                                "needs a pool larger than K"),
        "padnas: fewer epochs than stages": Case([*run, "--method", "padnas", "--epochs", "2"],
                                                 "over 4 stages"),
        "missing config": Case([*run, "--config", f"{r}/none.yaml"], "cannot read config"),
        "broken config": Case([*run, "--config", f"{r}/broken.yaml"], "not valid YAML"),
        "code in config": Case([*run, "--config", f"{r}/evil.yaml"], "not valid YAML"),
        # run: data
        "missing npz": Case([*run, "--dataset", "npz:/nonexistent/x.npz"],
                            "npz file not found"),
        "corrupt npz": Case([*run, "--dataset", f"npz:{r}/corrupt.npz"], "cannot read npz"),
        "incomplete npz": Case([*run, "--dataset", f"npz:{r}/incomplete.npz"], "lacks arrays"),
        "negative labels": Case([*run, "--dataset", f"npz:{r}/negative.npz"],
                                "negative labels"),
        "NaN images": Case([*run, "--dataset", f"npz:{r}/nan.npz"], "NaN"),
        "non-square images": Case([*run, "--dataset", f"npz:{r}/oblong.npz"], "not square"),
        "channels-first": Case([*run, "--dataset", f"npz:{r}/channels-first.npz"],
                               "channels-first"),
        "empty imagefolder": Case([*run, "--dataset", f"imagefolder:{r}/empty-folder"],
                                  "imagefolder"),
        "corrupt PNG": Case([*run, "--dataset", f"imagefolder:{r}/corrupt-png"],
                            "unreadable image"),
        # run: output and resume
        "out is a file": Case(["run", "--quiet", "--out", f"{r}/a-file", *TINY_ARGS],
                              "is a file"),
        "out unwritable": Case(["run", "--quiet", "--out", "/proc/nasbench-out", *TINY_ARGS],
                               "/proc/nasbench-out"),
        "diverged": Case([*run, *TINY_ARGS, "--set", "hp.w_lr=1.0e+30"], "diverged",
                         records_failure=True),
        "resume: not a run": Case(["run", "--resume", r], "is not a run folder"),
        "resume: changed result": Case(["run", "--resume", f"{r}/resumable", "--epochs", "5"],
                                       "would change its result"),
        "resume: empty checkpoint": Case(["run", "--resume", f"{r}/empty-checkpoint"],
                                         "empty or truncated"),
        "resume: malicious checkpoint": Case(["run", "--resume", f"{r}/evil-checkpoint"],
                                             "refused"),
        # show
        "show: corrupt summary": Case(["show", f"{r}/bad-summary"], "summary.json"),
        "show: partial summary": Case(["show", f"{r}/partial-summary"], "lacks"),
        "show: broken metrics": Case(["show", f"{r}/unfinished-bad-metrics"], "metrics.jsonl"),
        "show: not a folder": Case(["show", f"{r}/nowhere"], "not a folder"),
        "show: a folder with no runs": Case(["show", f"{r}/empty-folder"], "no run folders"),
        # evaluate
        "evaluate: node 99": Case(["evaluate", f"{r}/genotype-99.json", "--out", out],
                                  "outside"),
        "evaluate: corrupt genotype": Case(["evaluate", f"{r}/bad-genotype", "--out", out],
                                           "genotype.json"),
        "evaluate: corrupt series": Case(["evaluate", f"{r}/bad-series", "--out", out],
                                         "not a genotype"),
        "evaluate: out is a file": Case(["evaluate", f"{r}/genotype-99.json", "--out",
                                         f"{r}/a-file"], "a file"),
        # sweep
        "sweep: name ..": Case(["sweep", "--name", "..", "--out", out], "one folder name"),
        "sweep: name a/b": Case(["sweep", "--name", "a/b", "--out", out], "one folder name"),
        "sweep: absolute name": Case(["sweep", "--name", f"{r}/x", "--out", out],
                                     "one folder name"),
        "sweep: out is a file": Case(["sweep", "--out", f"{r}/a-file"], "is a file"),
        "sweep: backwards seeds": Case(["sweep", "--seeds", "3-1", "--out", out],
                                       "runs backwards"),
        "sweep: empty file": Case(["sweep", f"{r}/empty-sweep.yaml", "--out", out], "empty"),
        "sweep: silent address": Case(["sweep", "--address", "127.0.0.1:1", "--out", out,
                                       "--join-timeout", "10", *TINY_ARGS[:-2]],
                                      "127.0.0.1:1"),
        # table, plot, figures
        "table: out is a folder": Case(["table", f"{r}/resumable", "--out", r], "is a folder"),
        "table: missing folder": Case(["table", f"{r}/nowhere"], "not a folder"),
        "plot: corrupt metrics": Case(["plot", f"{r}/bad-metrics", "--out", out,
                                       "--kind", "param-free"], "metrics.jsonl"),
        "plot: out is a file": Case(["plot", f"{r}/resumable", "--out", f"{r}/a-file"],
                                    "is a file"),
        "figures: out is a file": Case(["figures", "--reference", f"{r}/resumable", "--out",
                                        f"{r}/a-file"], "is a file"),
        "figures: no reference": Case(["figures", "--reference", f"{r}/nowhere", "--out", out],
                                      "no reference folder"),
        # reproduce
        "reproduce: name ..": Case(["reproduce", "darts-failure", "--name", "..", "--out", out],
                                   "one folder name"),
        "reproduce: escaping name": Case(["reproduce", "darts-failure", "--name",
                                          "../escaped", "--out", out], "one folder name"),
        "reproduce: bad eval field": Case(["reproduce", "darts-failure", "--eval-set",
                                           "bogus=1", "--out", out], "bogus"),
        "reproduce: backwards seeds": Case(["reproduce", "darts-failure", "--seeds", "3-1",
                                            "--out", out], "runs backwards"),
        "reproduce: out is a file": Case(["reproduce", "darts-failure", "--out",
                                          f"{r}/a-file"], "is a file"),
        "reproduce: a claims flag": Case(["reproduce", "darts-failure", "--rankcorr-archs",
                                          "5", "--out", out], "applies to `reproduce claims`"),
        # reproduce claims
        "claims: name ..": Case(["reproduce", "claims", "--name", "..", "--out", out],
                                "one folder name"),
        "claims: bad eval field": Case(["reproduce", "claims", "--eval-set", "bogus=1",
                                        "--out", out], "bogus"),
        "claims: bad search field": Case(["reproduce", "claims", "--set", "batch_size=0",
                                          "--out", out], "batch_size"),
        "claims: one rankcorr architecture": Case(["reproduce", "claims", "--rankcorr-archs",
                                                   "1", "--out", out], "--rankcorr-archs"),
        "claims: confidence 1": Case(["reproduce", "claims", "--confidence", "1", "--out",
                                      out], "--confidence"),
        "claims: zero padnas epochs": Case(["reproduce", "claims", "--padnas-epochs", "0",
                                            "--out", out], "padnas epochs"),
        "claims: padnas epochs below its stages": Case(["reproduce", "claims",
                                                        "--padnas-epochs", "2", "--out", out],
                                                       "over 4 stages"),
        "claims: darts-failure is not one": Case(["reproduce", "claims", "--darts-failure",
                                                  f"{r}/resumable", "--out", out],
                                                 "not a reproduce darts-failure folder"),
        "claims: a darts-failure flag": Case(["reproduce", "claims", "--series-seeds", "0",
                                              "--out", out], "applies to `reproduce "
                                                             "darts-failure`"),
        "claims: out is a file": Case(["reproduce", "claims", "--out", f"{r}/a-file"],
                                      "is a file"),
        "claims: no eval cpus": Case(["reproduce", "claims", "--eval-cpus", "0", "--out", out],
                                     "--eval-cpus"),
        "reproduce: no eval cpus": Case(["reproduce", "darts-failure", "--eval-cpus", "0",
                                         "--out", out], "--eval-cpus"),
        "claims: report of no experiment": Case(["reproduce", "claims", "--report-only",
                                                 "--dir", f"{r}/resumable"], "reproduce.json"),
        # rankcorr
        "rankcorr: not a PAD-NAS run": Case(["rankcorr", f"{r}/resumable"], "PAD-NAS"),
        "rankcorr: missing folder": Case(["rankcorr", f"{r}/nowhere"], "not a folder"),
        "rankcorr: one architecture": Case(["rankcorr", f"{r}/resumable", "--archs", "1"],
                                           "--archs"),
        # lookup
        "lookup: not a cell": Case(["lookup", "|skip_connect~0|+|none~0|"],
                                   "not a NAS-Bench-201 cell"),
        "lookup: unknown op": Case(["lookup", ALL_SKIP.replace("skip_connect~2",
                                                               "sep_conv_3x3~2")],
                                   "unknown op 'sep_conv_3x3'"),
        "lookup: restricted genotype": Case(["lookup", f"{r}/restricted-genotype.json"],
                                            "lookup needs a nb201 genotype, got restricted"),
        "lookup: restricted run": Case(["lookup", f"{r}/restricted-run"],
                                       "lookup needs a nb201 genotype, got restricted"),
        "lookup: two ops on one edge": Case(["lookup", f"{r}/two-ops.json"],
                                            "holds skip_connect and nor_conv_3x3"),
        "lookup: not a genotype": Case(["lookup", f"{r}/broken.yaml"], "not a genotype"),
        "lookup: corrupt run genotype": Case(["lookup", f"{r}/bad-genotype"], "genotype.json"),
        "lookup: missing path": Case(["lookup", f"{r}/nowhere.json"], "no such file or folder"),
        "lookup: a folder that is no run": Case(["lookup", f"{r}/empty-folder"],
                                                "is not a run folder"),
        "lookup: corrupt table": Case(["lookup", ALL_SKIP, "--table",
                                       f"{r}/nb201-flipped.csv.gz"], "fails its checksum"),
        "lookup: missing table": Case(["lookup", ALL_SKIP, "--table", f"{r}/nowhere.csv.gz"],
                                      "cannot read the NAS-Bench-201 table"),
        # draw, export
        "draw: not a genotype": Case(["draw", f"{r}/broken.yaml", "--out", out],
                                     "not a genotype"),
        "draw: missing file": Case(["draw", f"{r}/nowhere.json", "--out", out],
                                   "no such file or folder"),
        "draw: unknown group": Case(["draw", f"{r}/restricted-genotype.json", "--group",
                                     "cell7", "--out", out], "no cell group 'cell7'"),
        "draw: corrupt run genotype": Case(["draw", f"{r}/bad-genotype", "--out", out],
                                           "genotype.json"),
        "draw: out is a file": Case(["draw", f"{r}/restricted-genotype.json", "--out",
                                     f"{r}/a-file"], "is a file"),
        "export: not a run": Case(["export", f"{r}/empty-folder", "--out", f"{out}/n.pt2"],
                                  "is not a run folder"),
        "export: unfinished run": Case(["export", f"{r}/resumable", "--out", f"{out}/n.pt2"],
                                       "has not finished its search"),
        "export: out is a folder": Case(["export", f"{r}/restricted-run", "--out", r],
                                        "is a folder"),
    }


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_there_are_at_least_forty_cases(tmp_path: Path) -> None:
    assert len(cases(tmp_path)) >= 40


@pytest.mark.parametrize("name", sorted(cases(Path("/x"))))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
        name: str, inputs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = cases(inputs)[name]
    before = _tree(inputs)
    code = main(case.argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasbench: error:"), err
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert not (inputs / "pwned").exists()
    new = _tree(inputs) - before
    if case.records_failure:
        (run,) = {Path(p).parts[1] for p in new if len(Path(p).parts) > 1}  # out/<run>/
        folder = RunFolder(inputs / "out" / run)
        assert folder.failure() is not None and not folder.finished()
        shutil.rmtree(inputs / "out")
    else:
        assert not new, sorted(new)


def test_a_resumed_run_refuses_a_changed_setting_but_takes_threads(
        inputs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--resume keeps the run's config: a result-changing override is refused, a
    machine-only one (threads) is accepted and not recorded as a change."""
    folder = RunFolder(inputs / "resumable")
    config = folder.config_dict()
    assert main(["run", "--resume", str(folder.path), "--set", "hp.w_lr=0.5"]) == 2
    assert "w_lr" in capsys.readouterr().err
    assert folder.config_dict() == config
    assert yaml.safe_load((folder.path / "config.yaml").read_text()) == config
