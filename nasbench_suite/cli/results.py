"""Subcommands for many runs and their results: ``sweep``, ``table``, ``plot``, ``figures``.

Registered through ``COMMAND_MODULES`` in :mod:`nasbench_suite.cli.main`. Ray, pandas and
matplotlib are imported inside the command functions, so ``nasbench --help`` and
``nasbench run`` never pay for them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError

#: what ``nasbench figures`` builds from results/reference/: the files the docs show
FIGURE_TABLES = ("table.md", "table.tex", "table.csv")
FIGURES_BUILD = "build.json"
#: the list of files ``nasbench figures`` wrote; it only ever removes files listed there
FIGURES_MANIFEST = "manifest.json"
FIGURE_KINDS = ("acc-flops", "acc-params", "inherited-acc-flops", "param-free", "search-cost",
                "arch-weights")


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def seeds_arg(text: str | None) -> list[int]:
    """``0,1,2`` or ranges ``0-4`` (inclusive, ascending), each seed in [0, 2^32)."""
    seeds: list[int] = []
    for part in _split(text):
        span = re.fullmatch(r"(\d+)-(\d+)", part)
        if span:
            first, last = int(span[1]), int(span[2])
            if last < first:
                raise UsageError(f"--seeds: the range {part!r} runs backwards")
            seeds.extend(range(first, last + 1))
            continue
        try:
            seeds.append(int(part))
        except ValueError:
            raise UsageError(f"--seeds: {part!r} is not a seed or a range like 0-4") from None
    if text is not None and not seeds:
        raise UsageError(f"--seeds {text!r} names no seed")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise UsageError(f"--seeds: seed {bad[0]} is outside [0, 2^32)")
    return seeds


def output_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` as an output folder: a folder or nothing yet, never a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what} {path} is a file, not a folder")
    return out


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
    spec = spec_with_cli(spec, _split(args.methods), _split(args.spaces), _split(args.datasets),
                         seeds_arg(args.seeds), args.grid or [], fixed, args.name)
    if args.dry_run:
        trials = expand(spec, (Path(args.out) / spec.name).resolve())
        print(f"sweep {spec.name}: {len(trials)} trials")
        for trial in trials:
            print(f"  {trial.run_dir}")
        return 0
    run_sweep(spec, args.out, resources_arg(args), retry_failed=args.retry_failed,
              quiet=args.quiet)
    return 0


def resources_arg(args: argparse.Namespace) -> Any:
    """The cluster flags (the ``cluster`` parent parser) as sweep Resources."""
    from nasbench_suite.sweep.tune import Resources

    resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent,
                          args.address, args.max_failures, args.join_timeout)
    resources.validate()
    return resources


def cmd_table(args: argparse.Namespace) -> int:
    from nasbench_suite.report.tables import DEFAULT_METRICS, make_table
    from nasbench_suite.store.index import load_index

    metrics = _split(args.metrics) or list(DEFAULT_METRICS)
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

    kinds = [k for item in args.kind or [] for k in _split(item)] or list(KINDS)
    formats = ["png", "pdf"] + (["svg"] if args.svg else [])
    out = output_dir(args.out)
    for stem, fig in make_plots(args.paths, kinds, args.group):
        for path in save_figure(fig, out, stem, formats):
            print(f"wrote {path}")
    return 0


def build_figures(reference: Path, out: Path) -> list[Path]:
    """Every table and figure the docs show, from ``reference`` only, into ``out``: the
    tables and figures of all its runs, and the report of each packaged experiment
    (``nasbench reproduce``) in ``out/<experiment>/``. Files a previous build wrote and this
    one did not (figures of runs no longer in the reference) are removed; nothing else in
    ``out`` is ever touched (the build keeps a manifest of what it wrote)."""
    import matplotlib

    from nasbench_suite.cli.reproduce import write_any_report
    from nasbench_suite.experiments.darts_failure.experiment import MANIFEST
    from nasbench_suite.files import atomic_write, read_json, write_json
    from nasbench_suite.report.plots import make_plots, save_figure
    from nasbench_suite.report.tables import DEFAULT_METRICS, make_table
    from nasbench_suite.store.index import load_index
    from nasbench_suite.store.runfolder import find_runs

    if not reference.is_dir():
        raise UsageError(f"no reference folder {reference}")
    output_dir(out)
    try:
        find_runs([reference])
    except UsageError:
        raise UsageError(f"{reference} holds no run folders yet: commit reference runs there "
                         "first (or give --reference DIR)") from None
    manifest = out / FIGURES_MANIFEST
    before = [out / name for name in (read_json(manifest).get("files", [])
                                      if manifest.exists() else [])]
    df = load_index([reference])
    written = []
    for name, fmt in zip(FIGURE_TABLES, ("markdown", "latex", "csv"), strict=True):
        atomic_write(out / name, make_table(df, DEFAULT_METRICS, fmt))
        written.append(out / name)
    for stem, fig in make_plots([reference], FIGURE_KINDS, first_seed_only=True):
        written.extend(save_figure(fig, out, stem, ("png", "pdf")))
    # PNG and PDF bytes depend on the matplotlib that drew them; tables do not.
    write_json(out / FIGURES_BUILD, {"matplotlib": matplotlib.__version__})
    written.append(out / FIGURES_BUILD)
    for experiment in sorted(reference.glob(f"*/{MANIFEST}")):
        written.extend(write_any_report(experiment.parent, out / experiment.parent.name))
    for path in before:
        if path not in written and path.is_file():
            path.unlink()
    names = sorted(str(p.relative_to(out)) for p in written)
    write_json(manifest, {"files": names})
    return [*written, manifest]


def cmd_figures(args: argparse.Namespace) -> int:
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
                       help="sweep YAML file, or the name of one in experiments/")
    sweep.add_argument("--methods", help="comma-separated methods (replaces the file's)")
    sweep.add_argument("--spaces", help="comma-separated spaces (replaces the file's)")
    sweep.add_argument("--datasets", help="comma-separated datasets (replaces the file's)")
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
