"""One error boundary: bad input anywhere is one line on stderr, exit code 2, no traceback,
and nothing new on disk (the diverged run is the one exception: its folder records why).

Every case runs the real command line (in-process, through ``nasbench_suite.cli.main.main``)
against inputs made in a temporary folder: broken data files, corrupt run folders, unsafe
names, output paths that are files, numbers out of range, resources this machine lacks. No
case may start Ray (``ray_session`` is replaced by a tripwire), print the resolved config,
or write a file. A second writer of a run folder is refused while the first holds its lock
(tested with a second process).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from nasbench_suite.spaces import DARTS_V2

from nasbench_suite.cli.main import main
from nasbench_suite.errors import UsageError
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
    #: the case joins a Ray cluster (an --address that never answers): the one that may
    joins_ray: bool = False
    #: a mistyped command line: argparse's error line plus its usage line
    usage: bool = False
    #: environment for the case (no network: a proxy that refuses every connection)
    env: dict[str, str] = dataclasses.field(default_factory=dict)


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
    # data files a careless user or an attacker hands over
    whole = (root / "good.npz")
    _npz(whole, images, labels)
    data = whole.read_bytes()
    (root / "truncated.npz").write_bytes(data[:len(data) // 2])
    whole.unlink()
    np.savez(root / "object.npz", x_train=np.array([images, None], dtype=object),
             y_train=labels, x_test=images, y_test=labels)
    with open(root / "plain-npy.npz", "wb") as f:
        np.save(f, images)
    huge = labels.copy()
    huge[0] = 10**6
    _npz(root / "huge-label.npz", images, huge)
    _npz(root / "gap-labels.npz", images, labels * 2)
    _npz(root / "fraction-labels.npz", images, labels + 0.5)
    _npz(root / "text-labels.npz", images, labels.astype(str))
    _npz(root / "bool-images.npz", images > 128, labels)
    _npz(root / "one-class.npz", images, np.zeros(16, np.int64))
    _npz(root / "short-labels.npz", images, labels[:15])
    _npz(root / "one-hot.npz", images, np.eye(4, dtype=np.int64)[labels])
    _npz(root / "five-channels.npz", rng.integers(0, 255, (16, 8, 8, 5), dtype=np.uint8),
         labels)
    _npz(root / "flat.npz", images.reshape(16, -1), labels)
    _npz(root / "bright.npz", images.astype(np.int16) + 200, labels)
    np.savez(root / "empty.npz", x_train=images[:0], y_train=labels[:0], x_test=images[:0],
             y_test=labels[:0])
    np.savez(root / "mismatch.npz", x_train=images, y_train=labels,
             x_test=rng.integers(0, 255, (4, 10, 10, 3), dtype=np.uint8), y_test=labels[:4])
    np.savez(root / "unseen-test-label.npz", x_train=images, y_train=labels,
             x_test=images[:4], y_test=np.array([0, 1, 2, 9]))
    # config and sweep files
    (root / "random.bin").write_bytes(np.random.default_rng(1).bytes(512) + b"\xff\xfe")
    (root / "list.yaml").write_text("- epochs\n- 3\n")
    (root / "unknown-field.yaml").write_text("colour: red\n")
    (root / "sweep-unknown-key.yaml").write_text("methods: [darts]\ncolour: red\n")
    (root / "sweep-method-spaces.yaml").write_text("methods: [darts]\n"
                                                    "method_spaces: {gold: [relaxed]}\n")
    (root / "sweep-grid.yaml").write_text("grid: {epochs: 3}\n")
    (root / "empty-dir").mkdir()
    # broken run folders
    for name in ("bad-info", "bad-config", "list-config", "bad-state", "unfinished-bad-info",
                 "unfinished-bad-config", "finished"):
        shutil.copytree(finished, root / name)
    (root / "bad-info" / "run.json").write_text("{ not json")
    for name in ("bad-config", "unfinished-bad-config"):
        (root / name / "config.yaml").write_text("epochs: [1, 2\n")
    (root / "unfinished-bad-config" / "summary.json").unlink()
    (root / "list-config" / "config.yaml").write_text("- darts\n")
    for name in ("bad-state", "unfinished-bad-info"):
        (root / name / "summary.json").unlink()
    torch.save({"epoch": 1, "search_time": 0.0, "supernet": {"nope": torch.zeros(1)},
                "method": {}, "torch_rng": torch.get_rng_state(), "metrics": [],
                "events": [], "arch": [], "init_weights": torch.zeros(1)},
               root / "bad-state" / "checkpoint.pt")
    (root / "bad-state" / "checkpoint.prev.pt").unlink(missing_ok=True)
    shutil.copytree(root / "bad-state", root / "wrong-types")
    torch.save({"epoch": "one", "supernet": 3, "method": [], "torch_rng": None},
               root / "wrong-types" / "checkpoint.pt")
    (root / "unfinished-bad-info" / "run.json").write_text('{"layout": "two"')
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
    table = {
        # run: names, numbers, config files
        "unknown method": Case([*run, "--method", "nope"], "unknown method"),
        "unknown space": Case([*run, "--space", "nope"], "unknown space"),
        "unknown dataset": Case([*run, "--dataset", "mnist"], "unknown dataset"),
        "unknown preset": Case([*run, "--preset", "huge"], "unknown preset"),
        "zero epochs": Case([*run, "--epochs", "0"], "epochs must be positive"),
        "negative epochs": Case([*run, "--epochs", "-3"], "epochs must be positive"),
        "zero batch": Case([*run, "--batch-size", "0"], "batch_size must be positive"),
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
                                      "127.0.0.1:1", joins_ray=True),
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
                                            "--out", out], "--padnas-epochs must be positive"),
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
    table.update(_more_cases(r, out, run))
    return table


def _more_cases(r: str, out: str, run: list[str]) -> dict[str, Case]:
    """The hardening issue's cases: every command tried by an attacker and a careless user."""
    npz = {name: f"npz:{r}/{name}.npz" for name in (
        "truncated", "object", "plain-npy", "huge-label", "gap-labels", "nan")}
    sweep = ["sweep", "--out", out, "--name", "s", *TINY_ARGS]
    darts_failure = ["reproduce", "darts-failure", "--out", out]
    claims = ["reproduce", "claims", "--out", out]
    offline = {"http_proxy": "http://127.0.0.1:1", "https_proxy": "http://127.0.0.1:1",
               "no_proxy": ""}
    return {
        # run: numbers out of range or of the wrong kind
        "20-digit epochs": Case([*run, "--epochs", "99999999999999999999"], "out of range"),
        "epochs over the bound": Case([*run, "--epochs", "100001"], "at most 100,000"),
        "huge batch": Case([*run, "--batch-size", "100000000"], "batch_size"),
        "huge channels": Case([*run, "--set", "channels=1000000"], "channels"),
        "huge layers": Case([*run, "--set", "layers=50000"], "layers"),
        "huge nodes": Case([*run, "--set", "nodes=1000"], "nodes"),
        "huge image size": Case([*run, "--set", "image_size=100000"], "image_size"),
        "huge threads": Case([*run, "--threads", "100000"], "threads"),
        "zero threads": Case([*run, "--threads", "0"], "threads must be positive"),
        "seed 2^32": Case([*run, "--seed", "4294967296"], "seed must be in [0, 2^32)"),
        "fractional seed": Case([*run, "--set", "seed=1.5"], "expected int"),
        "boolean epochs": Case([*run, "--set", "epochs=true"], "expected int"),
        "NaN learning rate": Case([*run, "--set", "hp.w_lr=.nan"], "finite"),
        "unknown hyper-parameter": Case([*run, "--set", "hp.nosuch=1"], "nosuch"),
        "hp not a mapping": Case([*run, "--set", "hp=3"], "'hp' must be a mapping"),
        "override without =": Case([*run, "--set", "epochs"], "KEY=VALUE"),
        "score portion 0": Case([*run, "--set", "score_portion=0"], "score_portion"),
        "train portion 1": Case([*run, "--set", "train_portion=1"], "train_portion"),
        "no training images": Case([*run, "--set", "max_train_images=0"], "max_train_images"),
        "negative cutout": Case([*run, "--set", "cutout=-1"], "cutout"),
        "negative hessian_every": Case([*run, "--set", "hessian_every=-1"], "hessian_every"),
        "hessian tolerance 2": Case([*run, "--set", "hessian_tol=2"], "hessian_tol"),
        "unknown augment": Case([*run, "--set", "augment=nope"], "augment must be"),
        "unknown skip": Case([*run, "--set", "skip=nope"], "skip must be"),
        "zero eval batch": Case([*run, "--set", "eval_batch_size=0"], "eval_batch_size"),
        "zero calibration batches": Case([*run, "--set", "bn_calib_batches=0"],
                                         "bn_calib_batches"),
        "two layers": Case([*run, "--set", "layers=2"], "at least 3"),
        "tpu device": Case([*run, "--device", "tpu"], "device must be"),
        "preset not a name": Case([*run, "--set", "preset=3"], "preset must be a name"),
        # run: config files
        "config of random bytes": Case([*run, "--config", f"{r}/random.bin"],
                                       "not a text file"),
        "config a list": Case([*run, "--config", f"{r}/list.yaml"], "must hold a mapping"),
        "config unknown field": Case([*run, "--config", f"{r}/unknown-field.yaml"],
                                     "unknown config field"),
        "config a folder": Case([*run, "--config", r], "cannot read config"),
        # run: data
        "truncated npz": Case([*run, "--dataset", npz["truncated"]], "cannot read npz"),
        "object-array npz": Case([*run, "--dataset", npz["object"]], "Object arrays"),
        ".npy named .npz": Case([*run, "--dataset", npz["plain-npy"]], "a .npy file"),
        "label of a million": Case([*run, "--dataset", npz["huge-label"]],
                                   "at most 100,000 classes"),
        "labels with gaps": Case([*run, "--dataset", npz["gap-labels"]], "0..K-1"),
        "fractional labels": Case([*run, "--dataset", f"npz:{r}/fraction-labels.npz"],
                                  "labels must be integers"),
        "text labels": Case([*run, "--dataset", f"npz:{r}/text-labels.npz"],
                            "labels must be integers"),
        "boolean images": Case([*run, "--dataset", f"npz:{r}/bool-images.npz"],
                               "dtype bool"),
        "one class": Case([*run, "--dataset", f"npz:{r}/one-class.npz"], "single class"),
        "fewer labels than images": Case([*run, "--dataset", f"npz:{r}/short-labels.npz"],
                                         "15 labels for 16 images"),
        "one-hot labels": Case([*run, "--dataset", f"npz:{r}/one-hot.npz"], "one-hot"),
        "five channels": Case([*run, "--dataset", f"npz:{r}/five-channels.npz"],
                              "5 channels"),
        "flat images": Case([*run, "--dataset", f"npz:{r}/flat.npz"], "not N x H x W"),
        "pixels over 255": Case([*run, "--dataset", f"npz:{r}/bright.npz"],
                                "outside [0, 255]"),
        "no images": Case([*run, "--dataset", f"npz:{r}/empty.npz"], "not N x H x W"),
        "train and test shapes differ": Case([*run, "--dataset", f"npz:{r}/mismatch.npz"],
                                             "differ in shape"),
        "test label never trained": Case([*run, "--dataset",
                                          f"npz:{r}/unseen-test-label.npz"], "have none"),
        "npz without a path": Case([*run, "--dataset", "npz:"], "unknown dataset"),
        "missing imagefolder": Case([*run, "--dataset", f"imagefolder:{r}/nowhere"],
                                    "imagefolder not found"),
        "offline download": Case([*run, "--dataset", "cifar10", "--data-dir",
                                  f"{r}/new/data"], "cannot download", env=offline),
        # run: resume
        "resume: with --config": Case(["run", "--resume", f"{r}/resumable", "--config",
                                       f"{r}/list.yaml"], "drop --config"),
        "resume: missing folder": Case(["run", "--resume", f"{r}/nowhere"], "not a folder"),
        "resume: a file": Case(["run", "--resume", f"{r}/a-file"], "not a folder"),
        "resume: 20-digit epochs": Case(["run", "--resume", f"{r}/resumable", "--epochs",
                                         "99999999999999999999"], "would change its result"),
        "resume: checkpoint of another network": Case(["run", "--quiet", "--resume",
                                                       f"{r}/bad-state"], "does not fit"),
        "resume: checkpoint of the wrong types": Case(["run", "--quiet", "--resume",
                                                       f"{r}/wrong-types"], "does not fit"),
        "resume: corrupt run.json": Case(["run", "--resume", f"{r}/unfinished-bad-info"],
                                         "run.json"),
        "resume: corrupt config": Case(["run", "--resume", f"{r}/unfinished-bad-config"],
                                       "config.yaml"),
        # show
        "show: corrupt metrics of a finished run": Case(["show", f"{r}/bad-metrics"],
                                                        "metrics.jsonl line 2"),
        "show: corrupt run.json": Case(["show", f"{r}/bad-info"], "run.json"),
        "show: corrupt config": Case(["show", f"{r}/bad-config"], "config.yaml"),
        "show: config a list": Case(["show", f"{r}/list-config"], "not a config mapping"),
        "show: empty folder": Case(["show", f"{r}/empty-dir"], "no run folders"),
        "show: a file": Case(["show", f"{r}/a-file"], "not a folder"),
        # evaluate
        "evaluate: truncated npz": Case(["evaluate", f"{r}/resumable", "--dataset",
                                         npz["truncated"], "--out", out], "cannot read npz"),
        "evaluate: label of a million": Case(["evaluate", f"{r}/resumable", "--dataset",
                                              npz["huge-label"], "--out", out],
                                             "at most 100,000 classes"),
        "evaluate: 20-digit epochs": Case(["evaluate", f"{r}/resumable", "--epochs",
                                           "99999999999999999999", "--out", out],
                                          "out of range"),
        "evaluate: negative seed": Case(["evaluate", f"{r}/resumable", "--seed", "-1",
                                         "--out", out], "seed must be in"),
        "evaluate: zero batch": Case(["evaluate", f"{r}/resumable", "--batch-size", "0",
                                      "--out", out], "batch_size"),
        "evaluate: index without a series": Case(["evaluate", f"{r}/resumable", "--index",
                                                  "5", "--out", out], "no series"),
        "evaluate: random bytes": Case(["evaluate", f"{r}/random.bin", "--out", out],
                                       "not a genotype JSON file"),
        "evaluate: missing source": Case(["evaluate", f"{r}/nowhere", "--out", out],
                                         "not a folder"),
        # sweep: bad data and impossible resources never reach Ray
        "sweep: truncated npz": Case([*sweep, "--datasets", npz["truncated"]],
                                     "cannot read npz"),
        "sweep: object-array npz": Case([*sweep, "--datasets", npz["object"]],
                                        "Object arrays"),
        "sweep: .npy named .npz": Case([*sweep, "--datasets", npz["plain-npy"]],
                                       "a .npy file"),
        "sweep: label of a million": Case([*sweep, "--datasets", npz["huge-label"]],
                                          "at most 100,000 classes"),
        "sweep: labels with gaps": Case([*sweep, "--datasets", npz["gap-labels"]], "0..K-1"),
        "sweep: NaN images": Case([*sweep, "--datasets", npz["nan"]], "NaN"),
        "sweep: dry run of bad data": Case([*sweep, "--dry-run", "--datasets",
                                            npz["truncated"]], "cannot read npz"),
        "sweep: 1000 CPUs per trial": Case([*sweep, "--cpus-per-trial", "1000"],
                                           "this machine has"),
        "sweep: 1000 GPUs per trial": Case([*sweep, "--gpus-per-trial", "1000"],
                                           "visible GPUs"),
        "sweep: no CPUs per trial": Case([*sweep, "--cpus-per-trial", "0"],
                                         "--cpus-per-trial must be positive"),
        "sweep: negative GPUs": Case([*sweep, "--gpus-per-trial", "-1"], "--gpus-per-trial"),
        "sweep: no concurrency": Case([*sweep, "--max-concurrent", "0"], "--max-concurrent"),
        "sweep: negative failures": Case([*sweep, "--max-failures", "-1"], "--max-failures"),
        "sweep: zero join timeout": Case([*sweep, "--join-timeout", "0"], "--join-timeout"),
        "sweep: 20-digit epochs": Case([*sweep, "--epochs", "99999999999999999999"],
                                       "out of range"),
        "sweep: zero epochs": Case([*sweep, "--epochs", "0"], "epochs must be positive"),
        "sweep: empty name": Case(["sweep", "--name", "", "--out", out], "one folder name"),
        "sweep: hidden name": Case(["sweep", "--name", ".hidden", "--out", out],
                                   "one folder name"),
        "sweep: unknown method": Case([*sweep, "--methods", "nosuch"],
                                      "unknown method 'nosuch'; choose from"),
        "sweep: unknown space": Case([*sweep, "--spaces", "nosuch"], "unknown space"),
        "sweep: unknown dataset": Case([*sweep, "--datasets", "mnist"], "unknown dataset"),
        "sweep: a method twice": Case([*sweep, "--methods", "darts,darts"], "twice"),
        "sweep: billions of seeds": Case([*sweep, "--seeds", "0-99999999999"],
                                         "more than 10,000 seeds"),
        "sweep: seed not a number": Case([*sweep, "--seeds", "x"], "not a seed"),
        "sweep: seed 2^32": Case([*sweep, "--seeds", "4294967296"], "outside [0, 2^32)"),
        "sweep: axis without =": Case([*sweep, "--grid", "epochs"], "KEY=V1,V2"),
        "sweep: seed as an axis": Case([*sweep, "--grid", "seed=1,2"], "seeds"),
        "sweep: a value twice": Case([*sweep, "--grid", "channels=4,4"], "twice"),
        "sweep: method in --set": Case([*sweep, "--set", "method=darts"], "--methods"),
        "sweep: unknown field": Case([*sweep, "--set", "colour=red"], "unknown config field"),
        "sweep: huge axis value": Case([*sweep, "--grid", "channels=4,1000000"],
                                       "channels"),
        "sweep: missing file": Case(["sweep", f"{r}/none.yaml", "--out", out],
                                    "no sweep file"),
        "sweep: file a list": Case(["sweep", f"{r}/list.yaml", "--out", out],
                                   "must hold a mapping"),
        "sweep: file of random bytes": Case(["sweep", f"{r}/random.bin", "--out", out],
                                            "not a text file"),
        "sweep: unknown key": Case(["sweep", f"{r}/sweep-unknown-key.yaml", "--out", out],
                                   "unknown key 'colour'"),
        "sweep: method_spaces of another method": Case(
            ["sweep", f"{r}/sweep-method-spaces.yaml", "--out", out], "not in methods"),
        "sweep: axis not a list": Case(["sweep", f"{r}/sweep-grid.yaml", "--out", out],
                                       "non-empty list"),
        # reproduce darts-failure
        "reproduce: truncated npz": Case([*darts_failure, "--dataset", npz["truncated"]],
                                         "cannot read npz"),
        "reproduce: .npy named .npz": Case([*darts_failure, "--dataset", npz["plain-npy"]],
                                           "a .npy file"),
        "reproduce: 1000 CPUs per trial": Case([*darts_failure, "--cpus-per-trial", "1000"],
                                               "this machine has"),
        "reproduce: 1000 GPUs per trial": Case([*darts_failure, "--gpus-per-trial", "1000"],
                                               "visible GPUs"),
        "reproduce: 1000 GPUs per training": Case([*darts_failure, "--eval-gpus", "1000"],
                                                  "--eval-gpus"),
        "reproduce: 20-digit epochs": Case([*darts_failure, "--epochs",
                                            "99999999999999999999"], "--epochs must be at most"),
        "reproduce: empty name": Case([*darts_failure, "--name", ""], "one folder name"),
        "reproduce: billions of seeds": Case([*darts_failure, "--seeds", "0-99999999999"],
                                             "more than 10,000 seeds"),
        "reproduce: unknown dataset": Case([*darts_failure, "--dataset", "mnist"],
                                           "unknown dataset"),
        "reproduce: unknown search field": Case([*darts_failure, "--set", "colour=red"],
                                                "colour"),
        "reproduce: huge evaluation epochs": Case([*darts_failure, "--eval-set",
                                                   "epochs=99999999999"], "out of range"),
        "reproduce: huge Lanczos basis": Case([*darts_failure, "--hessian-iters", "99999"],
                                              "--hessian-iters must be at most"),
        # reproduce claims
        "claims: object-array npz": Case([*claims, "--dataset", npz["object"]],
                                         "Object arrays"),
        "claims: truncated npz": Case([*claims, "--dataset", npz["truncated"]],
                                      "cannot read npz"),
        "claims: label of a million": Case([*claims, "--dataset", npz["huge-label"]],
                                           "at most 100,000 classes"),
        "claims: 1000 CPUs per trial": Case([*claims, "--cpus-per-trial", "1000"],
                                            "this machine has"),
        "claims: 1000 CPUs per training": Case([*claims, "--eval-cpus", "1000"],
                                               "--eval-cpus 1000 but this machine has"),
        "claims: 1000 GPUs per trial": Case([*claims, "--gpus-per-trial", "1000"],
                                            "visible GPUs"),
        "claims: 20-digit epochs": Case([*claims, "--epochs", "99999999999999999999"],
                                        "--epochs must be at most"),
        "claims: huge padnas epochs": Case([*claims, "--padnas-epochs", "99999999999"],
                                           "--padnas-epochs must be at most"),
        "claims: a trillion resamples": Case([*claims, "--resamples", "1000000000000"],
                                             "--resamples must be at most"),
        "claims: huge rankcorr sample": Case([*claims, "--rankcorr-archs", "99999999"],
                                             "--rankcorr-archs must be at most"),
        "claims: empty name": Case([*claims, "--name", ""], "one folder name"),
        "claims: billions of seeds": Case([*claims, "--seeds", "0-99999999999"],
                                          "more than 10,000 seeds"),
        "claims: report of a missing folder": Case([*claims, "--report-only", "--dir",
                                                    f"{r}/nowhere"], "reproduce.json"),
        # table, plot, figures
        "table: empty folder": Case(["table", f"{r}/empty-dir"], "no run folders"),
        "table: unknown metric": Case(["table", f"{r}/finished", "--metrics", "nosuch"],
                                      "unknown metric"),
        "table: a file": Case(["table", f"{r}/a-file"], "not a folder"),
        "plot: unknown kind": Case(["plot", f"{r}/resumable", "--kind", "nosuch", "--out",
                                    out], "unknown plot kind"),
        "plot: empty folder": Case(["plot", f"{r}/empty-dir", "--out", out],
                                   "no run folders"),
        "plot: missing folder": Case(["plot", f"{r}/nowhere", "--out", out], "not a folder"),
        "plot: unknown group": Case(["plot", f"{r}/finished", "--kind", "arch-weights",
                                     "--group", "nosuch", "--out", out], "no group"),
        "figures: reference a file": Case(["figures", "--reference", f"{r}/a-file", "--out",
                                           out], f"{r}/a-file"),
        "figures: empty reference": Case(["figures", "--reference", f"{r}/empty-dir",
                                          "--out", out], "holds no run folders"),
        # rankcorr
        "rankcorr: a file": Case(["rankcorr", f"{r}/a-file"], "not a folder"),
        "rankcorr: empty folder": Case(["rankcorr", f"{r}/empty-dir"], "not a run folder"),
        "rankcorr: corrupt config": Case(["rankcorr", f"{r}/bad-config"], "config.yaml"),
        "rankcorr: zero epochs": Case(["rankcorr", f"{r}/resumable", "--eval-epochs", "0"],
                                      "--eval-epochs"),
        # mistyped command lines: argparse's line and the usage line
        "list: unknown kind": Case(["list", "nosuch"], "invalid choice", usage=True),
        "list: two kinds": Case(["list", "methods", "spaces"], "unrecognized", usage=True),
        "run: epochs not a number": Case([*run, "--epochs", "many"], "invalid int",
                                         usage=True),
        "show: no folder": Case(["show"], "RUN_DIR", usage=True),
        "table: unknown format": Case(["table", r, "--format", "xls"], "invalid choice",
                                      usage=True),
        "plot: no folder": Case(["plot"], "RESULTS", usage=True),
        "figures: unknown flag": Case(["figures", "--bogus"], "unrecognized", usage=True),
        "sweep: CPUs not a number": Case(["sweep", "--cpus-per-trial", "all"],
                                         "invalid float", usage=True),
        "reproduce: unknown experiment": Case(["reproduce", "nosuch"], "invalid choice",
                                              usage=True),
        "evaluate: no source": Case(["evaluate"], "RUN_DIR|GENOTYPE_JSON", usage=True),
        "rankcorr: archs not a number": Case(["rankcorr", r, "--archs", "x"], "invalid int",
                                             usage=True),
        "unknown command": Case(["nosuch"], "invalid choice", usage=True),
    }


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


COMMANDS = ("run", "show", "evaluate", "sweep", "table", "plot", "figures", "reproduce",
            "rankcorr", "list")


def test_there_are_at_least_150_cases_across_every_command(tmp_path: Path) -> None:
    table = cases(tmp_path)
    assert len(table) >= 150
    used = {case.argv[0] for case in table.values()}
    assert set(COMMANDS) <= used
    experiments = {case.argv[1] for case in table.values() if case.argv[0] == "reproduce"}
    assert {"darts-failure", "claims"} <= experiments


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A tripwire in place of the one function that starts or joins Ray; the list records
    the addresses of the cases that legitimately try to join a cluster."""
    from nasbench_suite.sweep import ray_session as module

    joined: list[str] = []
    real = module.ray_session

    def tripwire(address: str | None = None, **kwargs: object) -> object:
        if address is None:
            raise AssertionError("a bad-input case started Ray")
        joined.append(address)
        return real(address, **kwargs)

    monkeypatch.setattr(module, "ray_session", tripwire)
    return joined


@pytest.mark.parametrize("name", sorted(cases(Path("/x"))))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
        name: str, inputs: Path, capsys: pytest.CaptureFixture[str], no_ray: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = cases(inputs)[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = _tree(inputs)
    try:
        code = main(case.argv)
    except SystemExit as exc:  # argparse: a mistyped command line
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    if case.usage:
        assert len(lines) == 2 and lines[1].startswith("usage: nasbench"), err
        assert lines[0].startswith("nasbench") and ": error:" in lines[0], err
    else:
        assert len(lines) == 1 and lines[0].startswith("nasbench: error:"), err
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in err + out
    # nothing on stdout before the error line (a run that started, or a cluster join, may)
    assert case.records_failure or case.joins_ray or not out.strip(), out
    assert bool(no_ray) == case.joins_ray, no_ray
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


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "writer.lock"}


def test_a_second_writer_of_a_run_folder_is_refused(inputs: Path, tmp_path: Path) -> None:
    """Two `run --resume DIR` at once: the second process finds the first's lock, says who
    holds it and leaves every file as it was."""
    folder = RunFolder(shutil.copytree(inputs / "resumable", tmp_path / "run"))
    before = _snapshot(folder.path)
    with folder.lock():
        done = subprocess.run(
            [sys.executable, "-m", "nasbench_suite.cli.main", "run", "--quiet", "--resume",
             str(folder.path)], capture_output=True, text=True, timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"nasbench: error: {folder.path} is being written by another process "
        f"(pid {os.getpid()})"]
    assert "resolved config" not in done.stdout
    assert _snapshot(folder.path) == before
    assert folder.writer() is None  # released with the with-block


def test_a_killed_writer_leaves_no_stale_lock(inputs: Path, tmp_path: Path) -> None:
    """The lock is the kernel's: a writer killed with SIGKILL releases it at once."""
    folder = RunFolder(shutil.copytree(inputs / "resumable", tmp_path / "run"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from nasbench_suite.store.runfolder import RunFolder\n"
         "lock = RunFolder(sys.argv[1]).lock()\nprint('locked', flush=True)\ntime.sleep(120)",
         str(folder.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert folder.writer() == holder.pid
        with pytest.raises(UsageError, match=f"another process \\(pid {holder.pid}\\)"):
            folder.lock()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert folder.writer() is None
    folder.lock().release()


def test_a_sweep_refuses_a_trial_folder_another_process_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_ray: list[str]) -> None:
    """A sweep whose trial folder is being written (a `run --resume` of it) stops before Ray
    starts and before it writes anything."""
    trial = RunFolder(tmp_path / "out" / "s" / "darts-restricted-digits-s0")
    trial.path.mkdir(parents=True)
    with trial.lock():
        code = main(["sweep", "--out", str(tmp_path / "out"), "--name", "s", *TINY_ARGS])
    assert code == 2
    assert f"{trial.path} is being written by another process (pid {os.getpid()})" in \
        capsys.readouterr().err
    assert _tree(tmp_path / "out") == {"s", "s/darts-restricted-digits-s0",
                                       "s/darts-restricted-digits-s0/writer.lock"}
    assert not no_ray


def test_a_trial_leaves_a_folder_another_process_writes_alone(tmp_path: Path) -> None:
    """A Ray trial that finds its folder locked reports it and writes nothing there: no
    failure record in a folder that is the other process's."""
    from nasbench_suite.config import resolve_config
    from nasbench_suite.sweep.trials import run_trial

    folder = RunFolder(tmp_path / "trial")
    folder.path.mkdir()
    config = resolve_config({**TINY, "out": str(tmp_path)}).to_dict()
    ends: list[dict[str, object]] = []
    with folder.lock():
        run_trial({"run_dir": str(folder.path), "config": config}, on_end=ends.append,
                  log=lambda line: None)
    assert ends and ends[0]["status"] == "failed" and "another process" in str(
        ends[0]["reason"])
    assert _tree(folder.path) == {"writer.lock"}
