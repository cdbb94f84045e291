"""`nasbench evaluate`: train derived architectures from scratch."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.train import load_genotypes, resolve_eval_config, train_from_scratch

    points, run_cfg = load_genotypes(args.source, args.index)
    overrides: dict[str, Any] = {"source": args.source, "index": args.index}
    if run_cfg.get("dataset"):
        overrides["dataset"] = run_cfg["dataset"]
    for name in ("dataset", "data_dir", "preset", "seed", "epochs", "batch_size", "device",
                 "out", "threads"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    for item in args.set or []:
        key, value = parse_override(item)
        overrides[key] = value
    cfg = resolve_eval_config(overrides)
    print("resolved config:", {k: v for k, v in vars(cfg).items() if k != "extra"})
    ops = tuple(run_cfg["ops"]) if run_cfg.get("ops") else None
    for label, genotype in points:
        train_from_scratch(cfg, label, genotype, ops, progress=not args.quiet)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="train a derived architecture from scratch",
                        description="Train the genotype of a run (every point of a series, or "
                                    "--index) or of a genotype JSON file from scratch; the test "
                                    "split is read once, after the last epoch.")
    ev.add_argument("source", metavar="RUN_DIR|GENOTYPE_JSON")
    ev.add_argument("--index", type=int, help="one architecture of a series")
    ev.add_argument("--dataset", help="default: the run's dataset, or digits")
    ev.add_argument("--data-dir", dest="data_dir")
    ev.add_argument("--preset", help="mini (default) or paper (the DARTS recipe)")
    ev.add_argument("--seed", type=int)
    ev.add_argument("--epochs", type=int)
    ev.add_argument("--batch-size", dest="batch_size", type=int)
    ev.add_argument("--device")
    ev.add_argument("--threads", type=int)
    ev.add_argument("--out", help="default results/evals")
    ev.add_argument("--set", action="append", metavar="KEY=VALUE")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)
