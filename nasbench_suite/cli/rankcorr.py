"""`nasbench rankcorr RUN_DIR`: PAD-NAS's rank-correlation claim on one of its runs."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_rankcorr(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.experiments.rankcorr import RankCorrSettings, run_rankcorr

    eval_set: dict[str, Any] = dict(parse_override(item) for item in args.eval_set or [])
    settings = RankCorrSettings(eval_set=eval_set, threads=args.threads)
    for name in ("archs", "eval_epochs", "seed"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    result = run_rankcorr(args.run_dir, settings)
    print(f"wrote rankcorr.json in {args.run_dir}: tau per stage {result.tau}")
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    rc = sub.add_parser(
        "rankcorr", help="Kendall tau of one-shot vs stand-alone accuracy per PAD-NAS stage",
        description="PAD-NAS's claim on a finished PAD-NAS run: N architectures sampled once "
                    "(seeded, within the run's cost window) from the unpruned space; their "
                    "one-shot accuracy under each stage's kept supernet (batch norm "
                    "recalibrated, scoring split); their accuracy after one short training "
                    "from scratch (the same schedule for all, in RUN_DIR/rankcorr/); Kendall "
                    "tau per stage into RUN_DIR/rankcorr.json with a figure. Finished "
                    "trainings are skipped, interrupted ones resume.")
    rc.add_argument("run_dir", metavar="RUN_DIR", help="a finished PAD-NAS run folder")
    rc.add_argument("--archs", type=int, help="architectures to compare (default 30, the "
                                              "paper's)")
    rc.add_argument("--eval-epochs", dest="eval_epochs", type=int,
                    help="epochs of each training from scratch (default 2)")
    rc.add_argument("--seed", type=int, help="seed of the architecture sample (default: the "
                                             "run's)")
    rc.add_argument("--threads", type=int, help="torch threads of the trainings")
    rc.add_argument("--eval-set", dest="eval_set", action="append", metavar="KEY=VALUE",
                    help="an evaluation config field (e.g. channels=8); repeatable")
    rc.set_defaults(func=cmd_rankcorr)
