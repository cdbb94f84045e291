"""The ``nasbench`` command line.

Every user error (unknown names, impossible method/space pairs, bad numbers, missing or
corrupt files, unwritable output folders) is one line on stderr and exit code 2, caught
before a run folder is written; a mistyped command line also gets its usage line. Heavy
imports (torch, Ray, matplotlib) happen inside the commands, not at import time. Flags shared
by several commands are declared once, in the parent parsers of :func:`parents`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from nasbench_suite import __version__
from nasbench_suite.cli.choices import HelpFormatter, run_presets
from nasbench_suite.errors import Diverged, UsageError
from nasbench_suite.threads import configure_openmp

#: Modules that add more subcommands: each has ``register(subparsers, parents)`` and imports
#: its heavy dependencies (Ray, matplotlib) inside the command functions only.
COMMAND_MODULES: tuple[str, ...] = ("nasbench_suite.cli.results", "nasbench_suite.cli.evaluate",
                                     "nasbench_suite.cli.reproduce", "nasbench_suite.cli.rankcorr",
                                     "nasbench_suite.cli.lookup", "nasbench_suite.cli.draw",
                                     "nasbench_suite.cli.export")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the error line plus the usage on one line, exit 2;
    help texts name the registries' choices (cli/choices.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split())
        sys.stderr.write(f"{self.prog}: error: {message}\n{usage}\n")
        raise SystemExit(2)


def parents() -> dict[str, argparse.ArgumentParser]:
    """Parent parsers: each group of shared flags, declared once."""

    def parser() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    quiet = parser()
    quiet.add_argument("--quiet", action="store_true", help="no progress bars")
    data = parser()
    data.add_argument("--dataset", help="one of {datasets} (default digits; nasbench list "
                                        "datasets)")
    data.add_argument("--data-dir", dest="data_dir",
                      help="where torchvision keeps cifar10/cifar100 (downloaded if missing)")
    compute = parser()
    compute.add_argument("--device", help="auto (default: CUDA if available), cpu, cuda or "
                                          "cuda:N")
    compute.add_argument("--threads", type=int,
                         help="torch threads (default: the CPUs this process may use)")
    preset = parser()
    preset.add_argument("--preset", help="one of {presets} (default mini: a laptop CPU in "
                                         "minutes; paper: the papers' settings, for GPUs)")
    overrides = parser()
    overrides.add_argument("--set", action="append", metavar="KEY=VALUE",
                           help="any config field or method hyper-parameter (hp.NAME); the "
                                "value is read as YAML; repeatable")
    cluster = parser()
    cluster.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, default=1.0,
                         help="CPUs Ray gives each trial (default 1); its torch threads follow")
    cluster.add_argument("--gpus-per-trial", dest="gpus_per_trial", type=int, default=0,
                         help="whole GPUs per trial (default 0)")
    cluster.add_argument("--max-concurrent", dest="max_concurrent", type=int,
                         help="at most this many trials at once (default: as resources allow)")
    cluster.add_argument("--address",
                         help="join this Ray cluster (HOST:PORT or auto) instead of starting a "
                              "local one bound to 127.0.0.1")
    cluster.add_argument("--max-failures", dest="max_failures", type=int, default=2,
                         help="Tune restarts a trial whose worker died this many times; it "
                              "resumes from its checkpoint (default 2)")
    cluster.add_argument("--join-timeout", dest="join_timeout", type=float, default=30.0,
                         help="seconds to wait for the cluster at --address (default 30)")
    return {"quiet": quiet, "data": data, "compute": compute, "preset": preset,
            "set": overrides, "cluster": cluster}


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from nasbench_suite.config import parse_override

    overrides: dict[str, Any] = {}
    for name in ("method", "space", "dataset", "data_dir", "preset", "seed", "epochs",
                 "batch_size", "device", "out", "threads"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if args.amp:
        overrides["amp"] = True
    for item in args.set or []:
        key, value = parse_override(item)
        overrides[key] = value
    return overrides


def cmd_run(args: argparse.Namespace) -> int:
    from nasbench_suite.config import resolve_config
    from nasbench_suite.store.runfolder import FINISHED, RunFolder
    from nasbench_suite.training.loop import run_search
    from nasbench_suite.training.resume import resume_config

    overrides = _run_overrides(args)
    if args.resume:
        if args.config:
            raise UsageError("--resume continues a run with its own config; drop --config")
        folder = RunFolder(args.resume).check()
        if folder.status() == FINISHED:
            print(f"{folder.path} has already finished; nothing to resume")
            return 0
        folder.info()  # a corrupt run.json is refused here, not left for `show` to find
        cfg = resume_config(folder, overrides, lambda line: print(f"nasbench: {line}",
                                                                   file=sys.stderr))
        run_search(cfg, resume_dir=folder.path, progress=not args.quiet)
        return 0
    cfg = resolve_config(overrides, args.config)
    run_search(cfg, progress=not args.quiet)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """One line per method, space, dataset kind, run preset and shipped sweep. Only methods
    and spaces load torch (their capabilities are code); the rest is read from package data."""
    from nasbench_suite.data import DATASET_KINDS
    from nasbench_suite.sweep.catalog import describe, sweep_presets

    what = args.what
    if what in ("methods", "spaces", "all"):
        from nasbench_suite.methods import get_method, list_methods
        from nasbench_suite.spaces import SPACES
    if what in ("methods", "all"):
        print("methods:")
        for name in list_methods():
            cls = get_method(name)
            able = [s for s, sp in sorted(SPACES.items())
                    if cls.unsupported(sp.capabilities_for()) is None]
            print(f"  {name:8s} {cls.description} [spaces: {', '.join(able)}]")
    if what in ("spaces", "all"):
        print("spaces:")
        for name, space in sorted(SPACES.items()):
            print(f"  {name:10s} {space.description}; ops: {', '.join(space.default_ops)}")
    if what in ("datasets", "all"):
        print("datasets (--dataset):")
        for name, line in DATASET_KINDS.items():
            print(f"  {name:16s} {line}")
    if what in ("presets", "all"):
        print("run presets (--preset):")
        for name, line in run_presets().items():
            print(f"  {name:8s} {line}")
    if what in ("sweeps", "all"):
        print("sweeps (nasbench sweep NAME):")
        for name, path in sweep_presets().items():
            print(f"  {name:20s} {describe(path)}")
    return 0


def _acc(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"


def cmd_show(args: argparse.Namespace) -> int:
    from nasbench_suite.report.describe import genotype_lines, stop_line, sweep_lines
    from nasbench_suite.store.runfolder import FAILED, FINISHED, RunFolder

    folder = RunFolder(args.run_dir)
    if folder.path.is_dir() and not folder.is_run():  # a sweep's (or any) folder of runs
        print("\n".join(sweep_lines(folder.path)))
        return 0
    folder.check()
    cfg = folder.config_dict()
    info = folder.info()
    epochs_done = len(folder.metrics())  # a corrupt line is an error, even in a finished run
    # Every file is read before anything is printed: a broken one is the only line shown.
    lines: list[str] = []
    say = lines.append
    say(f"run: {folder.path}")
    say(f"method {cfg.get('method')}, space {cfg.get('space')}, dataset {info.dataset_id}, "
        f"seed {cfg.get('seed')}, preset {cfg.get('preset')} (layout {info.layout})")
    say(f"network: {cfg.get('layers')} cells, C={cfg.get('channels')}, epoch cap "
        f"{cfg.get('epochs')}, batch {cfg.get('batch_size')}")
    hp = cfg.get("hp") or {}
    if hp:
        say("hyper-parameters: " + ", ".join(f"{k}={v}" for k, v in hp.items()))
    status = folder.status()
    if status == FAILED:
        failure = folder.failure()
        say(f"failed after {epochs_done} epoch(s): "
            f"{failure.reason if failure else 'unknown'}")
        print("\n".join(lines))
        return 0
    if status != FINISHED:
        say(f"unfinished: {epochs_done} epoch(s) done; resume with nasbench run "
            f"--resume {folder.path}")
        print("\n".join(lines))
        return 0
    summary = folder.summary()
    final, derived, inh = summary.final, summary.derived, summary.inherited
    genotype = folder.genotype()
    say(f"{stop_line(summary, int(cfg.get('epochs') or summary.epochs_run), folder.events())}"
        f"; search time {summary.search_time_s:.1f} s, device {summary.device}")
    say(f"final epoch: train acc {final.get('train_acc', float('nan')):.4f} (train split, "
        f"augmented); supernet acc {final.get('supernet_raw_acc_score', float('nan')):.4f} "
        f"(scoring split, running batch-norm statistics, not recalibrated)")
    say(f"inherited weights, batch norm recalibrated, {inh.split} split: supernet "
        f"{_acc(inh.supernet_acc)}, derived {_acc(inh.derived_acc)}, gap {_acc(inh.gap)}")
    say(f"derived: {derived.macs / 1e6:.3g} M multiply-adds, {derived.params / 1e6:.3g} M "
        f"params, parameter-free share {derived.param_free_share:.2f}")
    say("genotype (node <- op(input), ...):")
    lines.extend(f"  {line}" for line in genotype_lines(genotype))
    if summary.ground_truth is not None:
        lines.extend(_truth_lines(summary.ground_truth, genotype))
    if summary.learning:
        ln = summary.learning
        say(f"architecture learning (from the start): median edge move "
            f"{ln.get('alpha_move_median', float('nan')):.4f}, max "
            f"{ln.get('alpha_move_max', float('nan')):.4f}; median edge spread "
            f"{ln.get('edge_spread_median', float('nan')):.4f}; edges whose choice changed "
            f"{100 * ln.get('choice_changed_share', float('nan')):.0f}%")
    series = summary.series
    if series:
        # The cost and accuracy columns first (summary.json stores keys sorted).
        lead = [k for k in ("index", "epoch", "stage", "round", "reason", "macs", "params",
                            "acc", "val_acc") if k in series[0]]
        keys = lead + [k for k in series[0] if k not in lead
                       and not isinstance(series[0][k], (dict, list))]
        millions = {"macs", "params"}  # one unit per quantity: M, as the derived line
        say(f"recorded architectures (macs: M multiply-adds, the papers' FLOPs; params: M; "
            f"acc: inherited weights, {inh.split} split):")
        say("  " + "  ".join(f"{k:>12s}" for k in keys))
        for point in series:
            say("  " + "  ".join(
                _fmt(point[k] / 1e6 if k in millions and point.get(k) is not None
                     else point.get(k)) for k in keys))
    print("\n".join(lines))
    return 0


def _truth_lines(columns: dict[str, Any], genotype: Any) -> list[str]:
    """The published ground truth the run recorded, in ``nasbench lookup``'s words."""
    from nasbench_suite.cli.lookup import truth_lines
    from nasbench_suite.groundtruth import several_ops_per_edge
    from nasbench_suite.groundtruth.nb201 import Truth

    note = (": the strongest kept op per edge of the genotype, which keeps several"
            if several_ops_per_edge(genotype) else "")
    return [f"ground truth (published table, the derived cell{note}):",
            *(f"  {line}" for line in truth_lines(Truth.from_record(columns)))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:12.4g}"
    return f"{value!s:>12s}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasbench", description="Benchmark differentiable NAS methods.")
    parser.add_argument("--version", action="version", version=f"nasbench-suite {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")
    p = parents()

    run = sub.add_parser("run", help="run one search",
                         parents=[p["data"], p["compute"], p["preset"], p["set"], p["quiet"]],
                         description="Run one search and write a run folder. Prints the "
                                     "resolved config and the folder it writes.")
    run.add_argument("--method", help="search method: {methods} (default darts; nasbench list "
                                      "methods)")
    run.add_argument("--space", help="search space: {spaces} (default restricted; nasbench "
                                     "list spaces)")
    run.add_argument("--config", help="YAML file of config fields (e.g. a run's config.yaml)")
    run.add_argument("--seed", type=int, help="random seed (default 0)")
    run.add_argument("--epochs", type=int,
                     help="search epochs (GOLD-NAS: a cap; PAD-NAS: split over its M stages "
                          "(hp.stages, default 4) as evenly as possible, earlier stages "
                          "taking the remainder, e.g. 10 = 3+3+2+2, each ending with its "
                          "search; hp.stage_epochs lists them instead and must sum to it; at "
                          "least M)")
    run.add_argument("--batch-size", dest="batch_size", type=int, help="batch size")
    run.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    run.add_argument("--out", help="folder for run folders (default results/runs)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run from its last checkpoint (only "
                          "--threads, --device and --data-dir may change)")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="list methods, spaces, datasets, presets, sweeps",
                         description="List what the suite offers, one line each.")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", "methods", "spaces", "datasets", "presets", "sweeps"],
                     help="what to list (default all)")
    lst.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a run's (or a sweep's) summary",
                          description="Print a run's config, why it stopped, final metrics, "
                                      "accuracies with their split, its genotype node by "
                                      "node, learning stats and series; on a folder of "
                                      "runs (a sweep), their status and the best runs.")
    show.add_argument("run_dir", metavar="RUN_DIR",
                      help="a run folder, or a folder of runs (a sweep's) to summarise")
    show.set_defaults(func=cmd_show)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            return int(args.func(args))
        except Diverged as exc:
            raise UsageError(f"the search diverged ({exc}); the failure is recorded in its "
                             "run folder; lower the learning rate") from None
    except UsageError as exc:
        sys.stderr.write(f"nasbench: error: {exc}\n")
        return 2
    except OSError as exc:  # an output path that cannot be written, a file that vanished
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"nasbench: error: {exc.strerror or exc}{where}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("nasbench: interrupted; every search keeps its last checkpoint: "
                         "the same command again resumes (one run: nasbench run --resume "
                         "RUN_DIR)\n")
        return 130


def entry() -> None:
    try:  # before torch loads: OpenMP threads must not spin against other work
        configure_openmp()
    except ValueError as exc:  # a bad NASBENCH_WAIT_POLICY
        sys.stderr.write(f"nasbench: error: {exc}\n")
        raise SystemExit(2) from None
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
