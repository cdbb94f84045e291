"""Subcommands for many runs and their results: ``sweep``, ``table``, ``plot``, ``figures``.

Registered through ``COMMAND_MODULES`` in :mod:`nasbench_suite.cli.main`. Ray, pandas and
matplotlib are imported inside the command functions, so ``nasbench --help`` and
``nasbench run`` never pay for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench_suite.cli.args import resources_arg, seeds_arg, split_list
from nasbench_suite.errors import UsageError
from nasbench_suite.files import output_dir


def cmd_sweep(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.sweep.spec import SweepSpec, expand, load_sweep_file, spec_with_cli
    from nasbench_suite.sweep.tune import run_sweep

    spec = load_sweep_file(args.file) if args.file else SweepSpec()
    output_dir(args.out)
    fixed: dict[str, Any] = {}
    for item in args.set or []:
        key, value = parse_override(item)
        fixed[key] = value
    for name in ("preset", "epochs"):
        if getattr(args, name) is not None:
            fixed[name] = getattr(args, name)
    spec = spec_with_cli(spec, split_list(args.methods), split_list(args.spaces),
                         split_list(args.datasets), seeds_arg(args.seeds), args.grid or [],
                         fixed, args.name)
    if args.dry_run:
        trials = expand(spec, (Path(args.out) / spec.name).resolve())
        print(f"sweep {spec.name}: {len(trials)} trials")
        for trial in trials:
            print(f"  {trial.run_dir}")
        return 0
    run_sweep(spec, args.out, resources_arg(args), retry_failed=args.retry_failed,
              quiet=args.quiet)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from nasbench_suite.report.tables import DEFAULT_METRICS, make_table
    from nasbench_suite.store.index import load_index

    metrics = split_list(args.metrics) or list(DEFAULT_METRICS)
    if args.out and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a folder; give a file name")
    df = load_index(args.paths)
    text = make_table(df, metrics, args.format)
    if args.out:
        from nasbench_suite.files import atomic_write

        atomic_write(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from nasbench_suite.report.plots import KINDS, make_plots, save_figure

    kinds = [k for item in args.kind or [] for k in split_list(item)] or list(KINDS)
    formats = ["png", "pdf"] + (["svg"] if args.svg else [])
    out = output_dir(args.out)
    for stem, fig in make_plots(args.paths, kinds, args.group):
        for path in save_figure(fig, out, stem, formats):
            print(f"wrote {path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from nasbench_suite.experiments.figures import build_figures

    for path in build_figures(Path(args.reference), Path(args.out)):
        print(f"wrote {path}")
    return 0


def register(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add sweep, table, plot and figures to the ``nasbench`` subparsers."""
    sweep = sub.add_parser(
        "sweep", help="run a grid of searches on Ray Tune",
        parents=[parents["preset"], parents["set"], parents["cluster"], parents["quiet"]],
        description="Run methods x spaces x datasets x seeds x overrides as Ray Tune trials. "
                    "Each trial writes a run folder under OUT/NAME/; running the same sweep "
                    "again skips finished trials and resumes interrupted ones.")
    sweep.add_argument("file", nargs="?", metavar="SWEEP_FILE",
                       help="sweep YAML file, or the name of a shipped one (nasbench list "
                            "sweeps)")
    sweep.add_argument("--methods", help="comma-separated methods of {methods} (replaces the "
                                         "file's)")
    sweep.add_argument("--spaces", help="comma-separated spaces of {spaces} (replaces the "
                                        "file's)")
    sweep.add_argument("--datasets", help="comma-separated datasets of {datasets} (replaces "
                                          "the file's)")
    sweep.add_argument("--seeds", help="seeds: 0,1,2 or a range 0-4 (replaces the file's)")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                       help="one more grid axis over any config field or hyper-parameter; "
                            "repeatable")
    sweep.add_argument("--epochs", type=int, help="search epochs of every trial")
    sweep.add_argument("--name", help="sweep folder name, one path component (default: the "
                                      "file's name, or 'sweep')")
    sweep.add_argument("--out", default="results/sweeps",
                       help="parent folder of sweep folders (default results/sweeps)")
    sweep.add_argument("--retry-failed", dest="retry_failed", action="store_true",
                       help="run failed trials again (from their last checkpoint)")
    sweep.add_argument("--dry-run", dest="dry_run", action="store_true",
                       help="list the trials and their folders, run nothing")
    sweep.set_defaults(func=cmd_sweep)

    table = sub.add_parser(
        "table", help="mean ± std table of run folders",
        description="One row per method variant, space and dataset; mean ± std over seeds. "
                    "Accuracy headers name their kind and split.")
    table.add_argument("paths", nargs="+", metavar="RESULTS",
                       help="run folders, sweep folders, or folders holding them")
    table.add_argument("--metrics", help="comma-separated columns (default acc,scratch_acc,"
                                         "macs,params,search_time_s)")
    table.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv"],
                       help="markdown (default), latex (booktabs) or csv (unrounded)")
    table.add_argument("--out", help="write to this file instead of stdout")
    table.set_defaults(func=cmd_table)

    plot = sub.add_parser(
        "plot", help="figures from run folders",
        description="Accuracy vs FLOPs and vs params with Pareto fronts (one panel per "
                    "dataset), architecture weights per edge, parameter-free share, search "
                    "cost; PNG and PDF.")
    plot.add_argument("paths", nargs="+", metavar="RESULTS",
                      help="run folders, sweep folders, or folders holding them")
    plot.add_argument("--kind", action="append",
                      help="acc-flops, acc-params, inherited-acc-flops, arch-weights, "
                           "param-free, search-cost (comma-separated or repeated; default all)")
    plot.add_argument("--out", default="results/plots",
                      help="folder for the images (default results/plots)")
    plot.add_argument("--svg", action="store_true", help="also write SVG")
    plot.add_argument("--group", help="arch-weights: the cell group (default the first: "
                                      "normal, or cell0 in the relaxed space)")
    plot.set_defaults(func=cmd_plot)

    figures = sub.add_parser(
        "figures", help="rebuild the docs' figures and tables from results/reference/",
        description="Rebuild every figure and table the docs show, from the reference runs "
                    "only; the same inputs give the same files. Only files a previous build "
                    "wrote (its manifest.json) are ever removed.")
    figures.add_argument("--reference", default="results/reference",
                         help="folder of reference runs and experiments "
                              "(default results/reference)")
    figures.add_argument("--out", default="results/figures",
                         help="output folder (default results/figures)")
    figures.set_defaults(func=cmd_figures)
