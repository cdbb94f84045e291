"""The ``nasbench`` command line.

Every user error (unknown names, impossible method/space pairs, bad numbers, missing or
corrupt files) is one line on stderr and exit code 2, and is caught before a run folder is
written. Heavy imports (torch, Ray) happen inside the commands, not at import time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from nasbench_suite.errors import UsageError

#: Modules that add more subcommands: each has ``register(subparsers)`` and imports its heavy
#: dependencies (Ray, matplotlib) inside the command functions only.
COMMAND_MODULES: tuple[str, ...] = ("nasbench_suite.cli_results", "nasbench_suite.cli_evaluate",
                                     "nasbench_suite.cli_reproduce")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


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
    from nasbench_suite.config import config_to_yaml, resolve_config
    from nasbench_suite.rundir import SUMMARY, check_run_dir, read_run_config
    from nasbench_suite.search import run_search

    overrides = _run_overrides(args)
    if args.resume:
        run_dir = check_run_dir(args.resume)
        if (run_dir / SUMMARY).exists():
            print(f"{run_dir} has already finished; nothing to resume")
            return 0
        saved = read_run_config(run_dir)
        cfg = resolve_config({**saved, **overrides})
    else:
        run_dir = None
        cfg = resolve_config(overrides, args.config)
    print("resolved config:")
    print("  " + config_to_yaml(cfg).rstrip().replace("\n", "\n  "))
    run_search(cfg, resume_dir=run_dir, progress=not args.quiet)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from methods import get_method, list_methods
    from nasbench_suite.config import PRESETS
    from nasbench_suite.data import DATASETS
    from spaces import SPACES

    what = args.what
    if what in ("methods", "all"):
        print("methods:")
        for name in list_methods():
            cls = get_method(name)
            print(f"  {name:8s} {cls.description} [spaces: {', '.join(sorted(cls.spaces))}]")
    if what in ("spaces", "all"):
        print("spaces:")
        for name, space in sorted(SPACES.items()):
            print(f"  {name:10s} {space.description}; ops: {', '.join(space.default_ops)}")
    if what in ("datasets", "all"):
        print("datasets:")
        for name in DATASETS:
            print(f"  {name}")
    if what in ("presets", "all"):
        print("presets:")
        for name in PRESETS:
            print(f"  {name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nasbench_suite.rundir import SUMMARY, check_run_dir, read_jsonl, read_run_config

    run_dir = check_run_dir(args.run_dir)
    cfg = read_run_config(run_dir)
    print(f"run: {run_dir}")
    print(f"method {cfg.get('method')}, space {cfg.get('space')}, dataset {cfg.get('dataset')}, "
          f"seed {cfg.get('seed')}, preset {cfg.get('preset')}")
    print(f"network: {cfg.get('layers')} cells, C={cfg.get('channels')}, epochs "
          f"{cfg.get('epochs')}, batch {cfg.get('batch_size')}")
    hp = cfg.get("hp") or {}
    if hp:
        print("hyper-parameters: " + ", ".join(f"{k}={v}" for k, v in hp.items()))
    summary_path = run_dir / SUMMARY
    if not summary_path.exists():
        rows = read_jsonl(run_dir / "metrics.jsonl")
        print(f"unfinished: {len(rows)} epoch(s) done; resume with nasbench run --resume {run_dir}")
        return 0
    summary = json.loads(summary_path.read_text())
    final = summary.get("final", {})
    derived = summary.get("derived", {})
    print(f"epochs {summary['epochs_run']}, search time {summary['search_time_s']:.1f} s, "
          f"device {summary['device']}")
    print(f"final: train acc {final.get('train_acc', float('nan')):.4f}, "
          f"held-out acc {final.get('heldout_acc', float('nan')):.4f}")
    print(f"derived: {derived.get('macs', 0) / 1e6:.2f} M multiply-adds, "
          f"{derived.get('params', 0) / 1e6:.3f} M params, "
          f"parameter-free share {derived.get('param_free_share', 0):.2f}")
    series = summary.get("series") or []
    if series:
        # The cost and accuracy columns first (summary.json stores keys sorted).
        lead = [k for k in ("index", "epoch", "reason", "macs", "params", "acc")
                if k in series[0]]
        keys = lead + [k for k in series[0] if k not in lead
                       and not isinstance(series[0][k], (dict, list))]
        print("recorded architectures (macs: multiply-adds, the papers' FLOPs):")
        print("  " + "  ".join(f"{k:>12s}" for k in keys))
        for point in series:
            print("  " + "  ".join(_fmt(point.get(k)) for k in keys))
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:12.4g}"
    return f"{value!s:>12s}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasbench", description="Benchmark differentiable NAS methods.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one search",
                         description="Run one search and write a run folder.")
    run.add_argument("--method", help="search method (nasbench list methods)")
    run.add_argument("--space", help="search space: restricted or relaxed")
    run.add_argument("--dataset", help="digits, cifar10, cifar100, npz:PATH, imagefolder:PATH")
    run.add_argument("--data-dir", dest="data_dir", help="where torchvision datasets live")
    run.add_argument("--preset", help="mini (default) or paper")
    run.add_argument("--config", help="YAML file of config fields")
    run.add_argument("--seed", type=int)
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", dest="batch_size", type=int)
    run.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    run.add_argument("--threads", type=int, help="torch intra-op threads")
    run.add_argument("--out", help="folder for run folders (default results/runs)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override any config field or method hyper-parameter; repeatable")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="list methods, spaces, datasets, presets",
                         description="List what the suite offers.")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", "methods", "spaces", "datasets", "presets"])
    lst.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a run's summary",
                          description="Print a run's config, final metrics and series.")
    show.add_argument("run_dir")
    show.set_defaults(func=cmd_show)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        sys.stderr.write(f"nasbench: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("nasbench: interrupted; resume from the last checkpoint with "
                         "nasbench run --resume RUN_DIR\n")
        return 130


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
