"""`nasbench rankcorr RUN_DIR`: PAD-NAS's rank-correlation claim on one of its runs; in a
space with a published table (nb201), any method's supernet ranking against the table."""

from __future__ import annotations

import argparse
from typing import Any

from nasbench_suite.errors import UsageError


def cmd_rankcorr(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.experiments.rankcorr import RankCorrSettings, run_rankcorr
    from nasbench_suite.groundtruth import tabulated
    from nasbench_suite.store.runfolder import RunFolder

    if tabulated(RunFolder(args.run_dir).check().config_dict().get("space")):
        return _against_table(args)

    eval_set: dict[str, Any] = dict(parse_override(item) for item in args.eval_set or [])
    settings = RankCorrSettings(eval_set=eval_set, threads=args.threads)
    for name in ("archs", "eval_epochs", "seed"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    result = run_rankcorr(args.run_dir, settings)
    print(f"wrote rankcorr.json in {args.run_dir}: tau per stage {result.tau}")
    return 0


def _against_table(args: argparse.Namespace) -> int:
    """The table replaces the trainings from scratch: their settings do not apply."""
    import torch

    from nasbench_suite.experiments.truthcorr import DEFAULT_CELLS, DEFAULT_SEED, measure

    if args.eval_epochs is not None or args.eval_set:
        raise UsageError("this run's space has a published table: rankcorr ranks against it "
                         "and trains nothing (drop --eval-epochs and --eval-set)")
    if args.threads:
        torch.set_num_threads(args.threads)
    measure(args.run_dir, args.archs if args.archs is not None else DEFAULT_CELLS,
            args.seed if args.seed is not None else DEFAULT_SEED)
    print(f"wrote truthcorr.json in {args.run_dir}")
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    rc = sub.add_parser(
        "rankcorr", help="Kendall tau of one-shot vs stand-alone accuracy per PAD-NAS stage; "
                         "in nb201 any run's one-shot ranking against the published table",
        description="PAD-NAS's claim on a finished PAD-NAS run: N architectures sampled once "
                    "(seeded, within the run's cost window) from the unpruned space; their "
                    "one-shot accuracy under each stage's kept supernet (batch norm "
                    "recalibrated, scoring split); their accuracy after one short training "
                    "from scratch (the same schedule for all, in RUN_DIR/rankcorr/); Kendall "
                    "tau per stage into RUN_DIR/rankcorr.json with a figure. Finished "
                    "trainings are skipped, interrupted ones resume. A run of any method in "
                    "a space with a published table (nb201) is ranked against the table "
                    "instead, nothing trained: N cells (default 100) stratified over the "
                    "table's accuracy range, the same for every run of a --seed (default "
                    "0); their one-shot accuracy with the run's final supernet (PAD-NAS: "
                    "each kept stage's); Kendall tau and Spearman rho against the table's "
                    "CIFAR-10 validation accuracy and the table accuracy of the supernet's "
                    "top 5, into RUN_DIR/truthcorr.json.")
    rc.add_argument("run_dir", metavar="RUN_DIR",
                    help="a finished PAD-NAS run folder, or any finished nb201 run")
    rc.add_argument("--archs", type=int, help="architectures to compare (default 30, the "
                                              "paper's; nb201: cells, default 100)")
    rc.add_argument("--eval-epochs", dest="eval_epochs", type=int,
                    help="epochs of each training from scratch (default 2)")
    rc.add_argument("--seed", type=int, help="seed of the architecture sample (default: the "
                                             "run's; nb201: 0, one sample for all runs)")
    rc.add_argument("--threads", type=int, help="torch threads of the trainings")
    rc.add_argument("--eval-set", dest="eval_set", action="append", metavar="KEY=VALUE",
                    help="an evaluation config field (e.g. channels=8); repeatable")
    rc.set_defaults(func=cmd_rankcorr)
