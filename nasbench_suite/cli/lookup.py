"""`nasbench lookup`: a cell's published NAS-Bench-201 accuracies, without training it.

Why a command: the ground truth is the whole point of the nb201 space; a user who has a run
folder, a genotype file or a cell from a paper should see what it is really worth (and where
it ranks among all 15,625 cells) in one line of shell.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError


def _genotype_or_arch(source: str) -> Any:
    """What ``source`` names: an arch string (it starts with ``|``), else the final genotype
    of a run folder, else the genotype of a JSON file; a UsageError for anything else."""
    from nasbench_suite.spaces import Genotype
    from nasbench_suite.store.runfolder import RunFolder

    if source.lstrip().startswith("|"):
        return source
    path = Path(source)
    if path.is_dir():
        return RunFolder(path).check().genotype()
    if path.is_file():
        try:
            return Genotype.load(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        except ValueError as exc:  # bad JSON is a ValueError too
            raise UsageError(f"{path}: not a genotype ({exc})") from None
    raise UsageError(f"no such file or folder: {source} (lookup takes a run folder, a "
                     f"genotype JSON file or an arch string '|op~0|+|op~0|op~1|+...|')")


def truth_lines(truth: Any) -> list[str]:
    """How a cell's published accuracies read (``nasbench lookup`` and ``nasbench show``)."""
    from nasbench_suite.groundtruth.nb201 import CELLS

    return [f"arch: {truth.arch}",
            f"CIFAR-10 validation {truth.cifar10_valid:.2f}, test {truth.cifar10_test:.2f} "
            f"(cifar10-valid setting)",
            f"CIFAR-100 test {truth.cifar100_test:.2f}",
            f"ImageNet16-120 test {truth.imagenet16_test:.2f}",
            f"percentile {truth.percentile:.2f} (share of the {CELLS:,} cells at or below its "
            f"CIFAR-10 validation accuracy)"]


def cmd_lookup(args: argparse.Namespace) -> int:
    from nasbench_suite.groundtruth.nb201 import lookup
    from nasbench_suite.spaces import Genotype
    from nasbench_suite.spaces.nb201_arch import NB201

    target = _genotype_or_arch(args.source)
    if isinstance(target, Genotype) and target.space != NB201:
        raise UsageError(f"lookup needs a {NB201} genotype, got {target.space}")
    try:
        truth = lookup(target, path=args.table)
    except ValueError as exc:  # not a cell of the space
        raise UsageError(str(exc)) from None
    print("\n".join(truth_lines(truth)))
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    lk = sub.add_parser("lookup", help="a cell's published NAS-Bench-201 accuracies",
                        description="Print the published NAS-Bench-201 accuracies (percent, "
                                    "200 epochs) of one cell and its percentile among all "
                                    "15,625 by CIFAR-10 validation accuracy. No training.")
    lk.add_argument("source", metavar="GENOTYPE_JSON|RUN_DIR|ARCH_STRING",
                    help="an nb201 genotype JSON file, an nb201 run folder (its final "
                         "genotype), or an arch string such as "
                         "'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+...|'")
    lk.add_argument("--table", metavar="PATH",
                    help="read this copy of the table instead of the shipped one (it must "
                         "pass the shipped checksum)")
    lk.set_defaults(func=cmd_lookup)
