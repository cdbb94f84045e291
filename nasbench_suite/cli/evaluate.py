"""`nasbench evaluate`: train derived architectures from scratch."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nasbench_suite.config import parse_override
    from nasbench_suite.data.datasets import check_dataset
    from nasbench_suite.files import check_output
    from nasbench_suite.training.scratch import (
        load_genotypes,
        resolve_eval_config,
        train_from_scratch,
    )

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
    check_output(cfg.out)
    check_dataset(cfg.dataset, cfg.image_size)  # bad data: one line, before the config
    ops = tuple(run_cfg["ops"]) if run_cfg.get("ops") else None
    pending = [f"resolved config: {asdict(cfg)}"]

    def log(line: str) -> None:
        """Print the config with the first line of the first training: a genotype that
        does not fit its network is refused before that, as the only line shown."""
        for first in pending:
            print(first)
        pending.clear()
        print(line)

    for label, genotype in points:
        train_from_scratch(cfg, label, genotype, ops, progress=not args.quiet, log=log)
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    ev = sub.add_parser("evaluate", help="train a derived architecture from scratch",
                        parents=[parents["data"], parents["compute"], parents["preset"],
                                 parents["set"], parents["quiet"]],
                        description="Train the genotype of a run (every point of a series, or "
                                    "--index) or of a genotype JSON file from scratch; the test "
                                    "split is read once, after the last epoch.")
    ev.add_argument("source", metavar="RUN_DIR|GENOTYPE_JSON",
                    help="a run folder, or a genotype JSON file")
    ev.add_argument("--index", type=int, help="one architecture of a series (0-based)")
    ev.add_argument("--seed", type=int, help="random seed (default 0)")
    ev.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    ev.add_argument("--batch-size", dest="batch_size", type=int, help="batch size")
    ev.add_argument("--out", help="parent folder of evaluation folders (default results/evals)")
    ev.set_defaults(func=cmd_evaluate)
