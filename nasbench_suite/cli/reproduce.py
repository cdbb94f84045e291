"""`nasbench reproduce EXPERIMENT`: run an experiment of the registry
(nasbench_suite.experiments) end to end, or rebuild its report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _overrides(items: list[str] | None) -> dict[str, Any]:
    from nasbench_suite.config import parse_override

    return dict(parse_override(item) for item in items or [])


def _refuse_foreign(args: argparse.Namespace) -> None:
    """A flag of other experiments only, given, would be silently ignored: refuse it."""
    from nasbench_suite.errors import UsageError
    from nasbench_suite.experiments import get_experiment, list_experiments

    own = set(get_experiment(args.experiment).flags)  # a flag two experiments share is fine
    owners: dict[str, list[str]] = {}
    for name in list_experiments():
        for flag in get_experiment(name).flags:
            owners.setdefault(flag, []).append(name)
    for flag, names in owners.items():
        if flag not in own and getattr(args, flag, None) not in (None, False):
            raise UsageError(f"--{flag.replace('_', '-')} applies to "
                             + " and ".join(f"`reproduce {n}`" for n in names) + " only")


#: flags every experiment takes
COMMON = ("name", "dataset", "data_dir", "preset", "seeds", "epochs", "eval_epochs", "threads",
          "device", "skip_eval", "eval_cpus", "eval_gpus")
#: flags that list seeds
SEED_LISTS = ("seeds", "series_seeds")


def _configure(cfg: Any, flags: tuple[str, ...], args: argparse.Namespace) -> Any:
    """Copy the flags the user gave (and this experiment takes) onto its config."""
    from nasbench_suite.cli.args import seeds_arg
    from nasbench_suite.files import output_dir

    for name in COMMON + flags:
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, seeds_arg(value) if name in SEED_LISTS else value)
    cfg.search_set = _overrides(args.set)
    cfg.eval_set = _overrides(args.eval_set)
    output_dir(cfg.out)
    return cfg


def cmd_reproduce(args: argparse.Namespace) -> int:
    from nasbench_suite.cli.args import resources_arg
    from nasbench_suite.experiments import get_experiment, write_report
    from nasbench_suite.experiments.base import run_experiment

    _refuse_foreign(args)
    experiment = get_experiment(args.experiment)
    cfg = _configure(experiment.config(out=args.out), experiment.flags, args)
    if args.report_only:
        cfg.validate()
        folder = Path(args.dir) if args.dir else Path(cfg.out) / cfg.sweep_name
        for path in write_report(folder):
            print(f"wrote {path}")
        return 0
    run_experiment(experiment, cfg, resources_arg(args), quiet=args.quiet)
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    from nasbench_suite.experiments import list_experiments

    rep = sub.add_parser(
        "reproduce", help="run a packaged experiment end to end (darts-failure, claims, nb201)",
        parents=[parents["data"], parents["compute"], parents["preset"], parents["cluster"],
                 parents["quiet"]],
        description="darts-failure: DARTS (1st order, or --second-order) on the restricted "
                    "and the relaxed space and GOLD-NAS on the relaxed space, several seeds, "
                    "the same data and epochs, as one sweep; every derived architecture "
                    "trained from scratch; a report (Markdown, CSV, figures) with the "
                    "parameter-free share, FLOPs, params, inherited-weight drop, accuracy "
                    "from scratch and the Hessian eigenvalue over epochs. claims: each paper's "
                    "headline claim with one data set and budget (DARTS and EDAS gaps, "
                    "PAD-NAS's Kendall tau per stage, NSE's best-at-budget per round, "
                    "GOLD-NAS's Pareto series, DARTS in the relaxed space from a darts-failure "
                    "folder) and a report whose verdicts come from bootstrap intervals over "
                    "seeds. nb201: the five methods on NAS-Bench-201, their cells judged by "
                    "the benchmark's table over the search epochs against random search (no "
                    "training from scratch). Running any again skips what is done and resumes "
                    "what was interrupted.")
    rep.add_argument("experiment", choices=list_experiments(),
                     help="the experiment to run")
    rep.add_argument("--seeds", help="darts-failure: 0,1,2 (default); claims: 0,1 (default); "
                                     "or a range 0-4")
    rep.add_argument("--epochs", type=int, help="search epochs of every method (default 20 "
                                                "for darts-failure, 10 for claims; GOLD-NAS "
                                                "stops earlier at its floor)")
    rep.add_argument("--padnas-epochs", dest="padnas_epochs", type=int,
                     help="claims: PAD-NAS's epochs, split over its stages (default: the "
                          "preset's, 40 in mini)")
    rep.add_argument("--rankcorr-archs", dest="rankcorr_archs", type=int,
                     help="claims: architectures of PAD-NAS's rank correlation (default 10)")
    rep.add_argument("--darts-failure", dest="darts_failure", metavar="DIR",
                     help="claims: a reproduce darts-failure folder for the DARTS-in-the-"
                          "relaxed-space row (default: results/reference/darts-failure-long-* "
                          "if committed)")
    rep.add_argument("--gap-tolerance", dest="gap_tolerance", type=float,
                     help="claims: EDAS's gap interval must lie below this (default 0.02)")
    rep.add_argument("--confidence", type=float,
                     help="claims: confidence level of the bootstrap intervals (default 0.95)")
    rep.add_argument("--resamples", type=int,
                     help="claims: bootstrap resamples (default 2000)")
    rep.add_argument("--second-order", dest="second_order", action="store_true", default=None,
                     help="DARTS second order (unrolled) instead of first order")
    rep.add_argument("--hessian-every", dest="hessian_every", type=int,
                     help="eigenvalue every N epochs and at the last (default 2; 0: off)")
    rep.add_argument("--hessian-iters", dest="hessian_iters", type=int,
                     help="Lanczos basis size of the eigenvalue (default 20)")
    rep.add_argument("--eval-preset", dest="eval_preset",
                     help="training from scratch: mini (default) or paper (DARTS recipe)")
    rep.add_argument("--eval-epochs", dest="eval_epochs", type=int,
                     help="epochs of every training from scratch (darts-failure default: the "
                          "preset's; claims: 2)")
    rep.add_argument("--eval-depth", dest="eval_depth", choices=["searched", "preset"],
                     help="searched (default): every architecture at its searched depth; "
                          "preset: the evaluation preset's (DARTS: 20 cells)")
    rep.add_argument("--score-every", dest="score_every", type=int,
                     help="supernet and derived accuracy with inherited weights (scoring "
                          "split) every N epochs (default 0: at the end only)")
    rep.add_argument("--collapse-threshold", dest="collapse_threshold", type=float,
                     help="report the first epoch whose parameter-free share exceeds this "
                          "(default 0.5)")
    rep.add_argument("--darts-es", dest="darts_es", action="store_true", default=None,
                     help="add the DARTS-ES arm: RobustDARTS's early stop on the eigenvalue's "
                          "growth (its public code's rule), replayed on each DARTS search (needs "
                          "--hessian-every 2 or 1)")
    rep.add_argument("--pdarts-skips", dest="pdarts_skips", type=int, metavar="M",
                     help="add P-DARTS's arm: each restricted-space DARTS search derived with "
                          "at most M skip connections per normal cell")
    rep.add_argument("--arms", dest="arms", type=lambda text: text.split(","),
                     metavar="ARM,...",
                     help="darts-failure: the search arms, or all (default darts-restricted,"
                          "darts-relaxed,gold-relaxed; also darts-restricted-s2, "
                          "darts-restricted-paperlr, darts-relaxed-identity, "
                          "darts-relaxed-paperlr, darts2-relaxed)")
    rep.add_argument("--control-cells", dest="control_cells", type=int, metavar="N",
                     help="darts-failure: the protocol control, N random cells per space "
                          "trained from scratch beside the all-skip cells and DARTS V2, over "
                          "the seeds (default 0: none)")
    rep.add_argument("--fit-threshold", dest="fit_threshold", type=float,
                     help="darts-failure: supernet training accuracy that counts as fitted "
                          "(default 0.85)")
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
