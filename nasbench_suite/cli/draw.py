"""`nasbench draw RUN_DIR|GENOTYPE_JSON`: the cells of an architecture as pictures (the
drawing itself is nasbench_suite/report/cells.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError


def load_genotype(source: str) -> tuple[Any, Path, str]:
    """The genotype ``source`` names (a run folder's final one, or a genotype JSON file),
    the folder its pictures go to by default and their file stem."""
    from nasbench_suite.spaces import Genotype
    from nasbench_suite.store.runfolder import RunFolder

    path = Path(source)
    if path.is_dir():
        return RunFolder(path).check().genotype(), path, "cells"
    if path.is_file():
        try:
            return Genotype.load(path), path.parent, f"{path.stem}-cells"
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        except ValueError as exc:  # bad JSON is a ValueError too
            raise UsageError(f"{path}: not a genotype ({exc})") from None
    raise UsageError(f"no such file or folder: {source} (draw takes a run folder or a "
                     "genotype JSON file)")


def cmd_draw(args: argparse.Namespace) -> int:
    from nasbench_suite.files import check_output
    from nasbench_suite.report.cells import draw_genotype, groups_to_draw, save_figure

    genotype, default_out, stem = load_genotype(args.source)
    groups_to_draw(genotype, args.group)  # an unknown group: one line, before matplotlib
    out = check_output(args.out) if args.out else default_out
    fig = draw_genotype(genotype, args.group)
    for path in save_figure(fig, out, f"{stem}-{args.group}" if args.group else stem,
                            args.svg):
        print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    draw = sub.add_parser(
        "draw", help="draw an architecture's cells (PNG, PDF)",
        description="Draw the cells of a run's final genotype, or of a genotype JSON file: "
                    "one panel per cell group (normal and reduce in DARTS cells, one per "
                    "cell in the relaxed space, NAS-Bench-201's one cell), nodes as boxes, "
                    "each edge an arrow labelled with its op(s). Writes PNG and PDF.")
    draw.add_argument("source", metavar="RUN_DIR|GENOTYPE_JSON",
                      help="a run folder, or a genotype JSON file")
    draw.add_argument("--group", help="draw this cell group only (e.g. normal, reduce, cell3)")
    draw.add_argument("--out", help="folder for the pictures (default: the run folder, or "
                                    "the JSON file's folder)")
    draw.add_argument("--svg", action="store_true", help="an SVG file too")
    draw.set_defaults(func=cmd_draw)
