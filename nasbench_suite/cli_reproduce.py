"""`nasbench reproduce EXPERIMENT`: the suite's packaged experiments (darts-failure)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _overrides(items: list[str] | None) -> dict[str, Any]:
    from nasbench_suite.config import parse_override

    return dict(parse_override(item) for item in items or [])


def cmd_reproduce(args: argparse.Namespace) -> int:
    from nasbench_suite.cli_results import output_dir, resources_arg, seeds_arg
    from nasbench_suite.reproduce import ReproduceConfig, run_reproduce
    from nasbench_suite.reproduce_report import write_report

    cfg = ReproduceConfig(experiment=args.experiment, out=args.out)
    for name in ("name", "dataset", "data_dir", "preset", "epochs", "hessian_every",
                 "hessian_iters", "eval_preset", "eval_epochs", "eval_depth", "threads",
                 "device", "score_every", "collapse_threshold", "pdarts_skips", "eval_cpus",
                 "eval_gpus"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.seeds:
        cfg.seeds = seeds_arg(args.seeds)
    if args.series_seeds:
        cfg.series_seeds = seeds_arg(args.series_seeds)
    cfg.second_order = args.second_order
    cfg.skip_eval = args.skip_eval
    cfg.darts_es = args.darts_es
    cfg.search_set = _overrides(args.set)
    cfg.eval_set = _overrides(args.eval_set)
    output_dir(cfg.out)
    if args.report_only:
        cfg.validate()
        folder = Path(args.dir) if args.dir else Path(cfg.out) / cfg.sweep_name
        for path in write_report(folder):
            print(f"wrote {path}")
        return 0
    run_reproduce(cfg, resources_arg(args), quiet=args.quiet)
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    rep = sub.add_parser(
        "reproduce", help="run a packaged experiment end to end (darts-failure)",
        parents=[parents["data"], parents["compute"], parents["preset"], parents["cluster"],
                 parents["quiet"]],
        description="darts-failure: DARTS (1st order, or --second-order) on the restricted "
                    "and the relaxed space and GOLD-NAS on the relaxed space, several seeds, "
                    "the same data and epochs, as one sweep; every derived architecture "
                    "trained from scratch; a report (Markdown, CSV, figures) with the "
                    "parameter-free share, FLOPs, params, inherited-weight drop, accuracy "
                    "from scratch and the Hessian eigenvalue over epochs. Running it again "
                    "skips what is done and resumes what was interrupted.")
    rep.add_argument("experiment", choices=["darts-failure"], help="the experiment to run")
    rep.add_argument("--seeds", help="0,1,2 (default) or a range 0-4")
    rep.add_argument("--epochs", type=int, help="search epochs of every method (default 20; "
                                                "GOLD-NAS stops earlier at its floor)")
    rep.add_argument("--second-order", dest="second_order", action="store_true",
                     help="DARTS second order (unrolled) instead of first order")
    rep.add_argument("--hessian-every", dest="hessian_every", type=int,
                     help="eigenvalue every N epochs and at the last (default 2; 0: off)")
    rep.add_argument("--hessian-iters", dest="hessian_iters", type=int,
                     help="Lanczos basis size of the eigenvalue (default 20)")
    rep.add_argument("--eval-preset", dest="eval_preset",
                     help="training from scratch: mini (default) or paper (DARTS recipe)")
    rep.add_argument("--eval-epochs", dest="eval_epochs", type=int,
                     help="epochs of every training from scratch (default: the preset's)")
    rep.add_argument("--eval-depth", dest="eval_depth", choices=["searched", "preset"],
                     help="searched (default): every architecture at its searched depth; "
                          "preset: the evaluation preset's (DARTS: 20 cells)")
    rep.add_argument("--score-every", dest="score_every", type=int,
                     help="supernet and derived accuracy with inherited weights (scoring "
                          "split) every N epochs (default 0: at the end only)")
    rep.add_argument("--collapse-threshold", dest="collapse_threshold", type=float,
                     help="report the first epoch whose parameter-free share exceeds this "
                          "(default 0.5)")
    rep.add_argument("--darts-es", dest="darts_es", action="store_true",
                     help="add the DARTS-ES arm: RobustDARTS's early stop on the eigenvalue's "
                          "growth, replayed on each DARTS search (needs --hessian-every 1)")
    rep.add_argument("--pdarts-skips", dest="pdarts_skips", type=int, metavar="M",
                     help="add P-DARTS's arm: each restricted-space DARTS search derived with "
                          "at most M skip connections per normal cell")
    rep.add_argument("--eval-cpus", dest="eval_cpus", type=float,
                     help="CPUs of each training from scratch, a Ray task (default 1)")
    rep.add_argument("--eval-gpus", dest="eval_gpus", type=int,
                     help="whole GPUs of each training from scratch (default 0)")
    rep.add_argument("--series-seeds", dest="series_seeds",
                     help="also train every recorded GOLD-NAS architecture of these seeds")
    rep.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="a search config field for every trial; repeatable")
    rep.add_argument("--eval-set", dest="eval_set", action="append", metavar="KEY=VALUE",
                     help="an evaluation config field; repeatable")
    rep.add_argument("--name", help="experiment folder name, one path component (default "
                                    "EXPERIMENT-DATASET)")
    rep.add_argument("--out", default="results/reproduce",
                     help="parent folder (default results/reproduce)")
    rep.add_argument("--skip-eval", dest="skip_eval", action="store_true",
                     help="searches only; no training from scratch")
    rep.add_argument("--report-only", dest="report_only", action="store_true",
                     help="only rebuild the report from the experiment folder")
    rep.add_argument("--dir", help="with --report-only: the experiment folder")
    rep.set_defaults(func=cmd_reproduce)
