"""Subcommands for many runs and their results: ``sweep``, ``table``, ``plot``, ``figures``.

Registered through ``COMMAND_MODULES`` in :mod:`nasbench_suite.cli`. Ray, pandas and
matplotlib are imported inside the command functions, so ``nasbench --help`` and
``nasbench run`` never pay for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError

#: what ``nasbench figures`` builds from results/reference/: the files the docs show
FIGURE_TABLES = ("table.md", "table.tex", "table.csv")
FIGURES_BUILD = "build.json"
FIGURE_KINDS = ("acc-flops", "acc-params", "param-free", "search-cost", "arch-weights")


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _seeds(text: str | None) -> list[int]:
    """``0,1,2`` or ranges ``0-4`` (inclusive)."""
    seeds: list[int] = []
    for part in _split(text):
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise UsageError(f"--seeds: {part!r} is not a seed or a range like 0-4") from None
    return seeds


def cmd_sweep(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.sweep import (
        Resources,
        SweepSpec,
        expand,
        load_sweep_file,
        run_sweep,
        spec_with_cli,
    )

    spec = load_sweep_file(args.file) if args.file else SweepSpec()
    fixed: dict[str, Any] = {}
    for item in args.set or []:
        key, value = parse_override(item)
        fixed[key] = value
    for name in ("preset", "epochs"):
        if getattr(args, name) is not None:
            fixed[name] = getattr(args, name)
    spec = spec_with_cli(spec, _split(args.methods), _split(args.spaces), _split(args.datasets),
                         _seeds(args.seeds), args.grid or [], fixed, args.name)
    if args.dry_run:
        trials = expand(spec, (Path(args.out) / spec.name).resolve())
        print(f"sweep {spec.name}: {len(trials)} trials")
        for trial in trials:
            print(f"  {trial.run_dir}")
        return 0
    resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent,
                          args.address)
    run_sweep(spec, args.out, resources, retry_failed=args.retry_failed, quiet=args.quiet)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from nasbench_suite.index import load_index
    from nasbench_suite.tables import DEFAULT_METRICS, make_table

    metrics = _split(args.metrics) or list(DEFAULT_METRICS)
    df = load_index(args.paths)
    text = make_table(df, metrics, args.format)
    if args.out:
        from nasbench_suite.rundir import atomic_write

        atomic_write(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from nasbench_suite.plots import KINDS, make_plots, save_figure

    kinds = [k for item in args.kind or [] for k in _split(item)] or list(KINDS)
    formats = ["png", "pdf"] + (["svg"] if args.svg else [])
    out = Path(args.out)
    for stem, fig in make_plots(args.paths, kinds, args.group):
        for path in save_figure(fig, out, stem, formats):
            print(f"wrote {path}")
    return 0


def build_figures(reference: Path, out: Path) -> list[Path]:
    """Every table and figure the docs show, from ``reference`` only, into ``out``: the
    tables and figures of all its runs, and the report of each packaged experiment
    (``nasbench reproduce``) in ``out/<experiment>/``."""
    import matplotlib

    from nasbench_suite.index import find_run_dirs, load_index
    from nasbench_suite.plots import make_plots, save_figure
    from nasbench_suite.reproduce import MANIFEST, write_report
    from nasbench_suite.rundir import atomic_write, write_json
    from nasbench_suite.tables import DEFAULT_METRICS, make_table

    if not reference.is_dir():
        raise UsageError(f"no reference folder {reference}")
    try:
        find_run_dirs([reference])
    except UsageError:
        raise UsageError(f"{reference} holds no run folders yet: commit reference runs there "
                         "first (or give --reference DIR)") from None
    df = load_index([reference])
    written = []
    for name, fmt in zip(FIGURE_TABLES, ("markdown", "latex", "csv"), strict=True):
        atomic_write(out / name, make_table(df, DEFAULT_METRICS, fmt))
        written.append(out / name)
    for stem, fig in make_plots([reference], FIGURE_KINDS, first_seed_only=True):
        written.extend(save_figure(fig, out, stem, ("png", "pdf")))
    # Figures of runs no longer in the reference would otherwise linger beside the new ones.
    for path in sorted(out.iterdir()):
        if path not in written and path.name.startswith(FIGURE_KINDS) and \
                path.suffix in (".png", ".pdf"):
            path.unlink()
    # PNG and PDF bytes depend on the matplotlib that drew them; tables do not.
    write_json(out / FIGURES_BUILD, {"matplotlib": matplotlib.__version__})
    written.append(out / FIGURES_BUILD)
    for manifest in sorted(reference.glob(f"*/{MANIFEST}")):
        written.extend(write_report(manifest.parent, out / manifest.parent.name))
    return written


def cmd_figures(args: argparse.Namespace) -> int:
    for path in build_figures(Path(args.reference), Path(args.out)):
        print(f"wrote {path}")
    return 0


def register(sub: Any) -> None:
    """Add sweep, table, plot and figures to the ``nasbench`` subparsers."""
    sweep = sub.add_parser(
        "sweep", help="run a grid of searches on Ray Tune",
        description="Run methods x spaces x datasets x seeds x overrides as Ray Tune trials. "
                    "Each trial writes a run folder under OUT/NAME/; running the same sweep "
                    "again skips finished trials and resumes interrupted ones.")
    sweep.add_argument("file", nargs="?", metavar="SWEEP_FILE",
                       help="sweep YAML file, or the name of one in experiments/")
    sweep.add_argument("--methods", help="comma-separated methods (replaces the file's)")
    sweep.add_argument("--spaces", help="comma-separated spaces")
    sweep.add_argument("--datasets", help="comma-separated datasets")
    sweep.add_argument("--seeds", help="seeds: 0,1,2 or 0-4")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                       help="one more grid axis over any config field or hyper-parameter; "
                            "repeatable")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a config field for every trial; repeatable")
    sweep.add_argument("--preset", help="mini (default) or paper")
    sweep.add_argument("--epochs", type=int)
    sweep.add_argument("--name", help="sweep name (default: the file's name, or 'sweep')")
    sweep.add_argument("--out", default="results/sweeps",
                       help="parent folder of sweep folders (default results/sweeps)")
    sweep.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, default=1.0)
    sweep.add_argument("--gpus-per-trial", dest="gpus_per_trial", type=int, default=0,
                       help="whole GPUs per trial (default 0)")
    sweep.add_argument("--max-concurrent", dest="max_concurrent", type=int,
                       help="at most this many trials at once (default: as resources allow)")
    sweep.add_argument("--address", help="join this Ray cluster (e.g. auto or HOST:6379) "
                                         "instead of starting a local one")
    sweep.add_argument("--retry-failed", dest="retry_failed", action="store_true",
                       help="run failed trials again (from their last checkpoint)")
    sweep.add_argument("--dry-run", dest="dry_run", action="store_true",
                       help="list the trials and their folders, run nothing")
    sweep.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    sweep.set_defaults(func=cmd_sweep)

    table = sub.add_parser(
        "table", help="mean ± std table of run folders",
        description="Group runs by method and space; mean ± std over seeds.")
    table.add_argument("paths", nargs="+", metavar="RESULTS",
                       help="run folders, sweep folders, or folders holding them")
    table.add_argument("--metrics", help="comma-separated columns (default "
                                         "acc,macs,params,search_time_s)")
    table.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv"])
    table.add_argument("--out", help="write to this file instead of stdout")
    table.set_defaults(func=cmd_table)

    plot = sub.add_parser(
        "plot", help="figures from run folders",
        description="Accuracy vs FLOPs and vs params with Pareto fronts, architecture "
                    "weights per edge, parameter-free share, search cost; PNG and PDF.")
    plot.add_argument("paths", nargs="+", metavar="RESULTS",
                      help="run folders, sweep folders, or folders holding them")
    plot.add_argument("--kind", action="append",
                      help="acc-flops, acc-params, arch-weights, param-free, search-cost "
                           "(comma-separated or repeated; default all)")
    plot.add_argument("--out", default="results/plots", help="folder for the images")
    plot.add_argument("--svg", action="store_true", help="also write SVG")
    plot.add_argument("--group", help="arch-weights: the cell group (default the first: "
                                      "normal, or cell0 in the relaxed space)")
    plot.set_defaults(func=cmd_plot)

    figures = sub.add_parser(
        "figures", help="rebuild the docs' figures and tables from results/reference/",
        description="Rebuild every figure and table the docs show, from the reference runs "
                    "only; the same inputs give the same files.")
    figures.add_argument("--reference", default="results/reference")
    figures.add_argument("--out", default="results/figures")
    figures.set_defaults(func=cmd_figures)
