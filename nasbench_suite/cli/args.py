"""Parsing helpers shared by the subcommands: lists, seeds, output folders, resources."""

from __future__ import annotations

import argparse
import re
from typing import Any

from nasbench_suite.errors import UsageError


def split_list(text: str | None) -> list[str]:
    """``a, b,c`` -> ``[a, b, c]``; nothing given -> ``[]``."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


#: at most this many seeds in one --seeds (a range like 0-4294967295 would otherwise be
#: expanded into a list of billions before anything else is checked)
MAX_SEEDS = 10_000


def seeds_arg(text: str | None) -> list[int]:
    """``0,1,2`` or ranges ``0-4`` (inclusive, ascending), each seed in [0, 2^32), at most
    MAX_SEEDS of them."""
    seeds: list[int] = []
    for part in split_list(text):
        span = re.fullmatch(r"(\d+)-(\d+)", part)
        if span:
            first, last = int(span[1]), int(span[2])
            if last < first:
                raise UsageError(f"--seeds: the range {part!r} runs backwards")
            if len(seeds) + last - first + 1 > MAX_SEEDS:
                raise UsageError(f"--seeds {text!r} names more than {MAX_SEEDS:,} seeds")
            seeds.extend(range(first, last + 1))
            continue
        try:
            seeds.append(int(part))
        except ValueError:
            raise UsageError(f"--seeds: {part!r} is not a seed or a range like 0-4") from None
    if len(seeds) > MAX_SEEDS:
        raise UsageError(f"--seeds {text!r} names more than {MAX_SEEDS:,} seeds")
    if text is not None and not seeds:
        raise UsageError(f"--seeds {text!r} names no seed")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise UsageError(f"--seeds: seed {bad[0]} is outside [0, 2^32)")
    return seeds


def resources_arg(args: argparse.Namespace) -> Any:
    """The cluster flags (the ``cluster`` parent parser) as sweep Resources."""
    from nasbench_suite.sweep.tune import Resources

    resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent,
                          args.address, args.max_failures, args.join_timeout)
    resources.validate()
    return resources
