"""`nasbench export RUN_DIR`: the run's network as one file torch alone loads (the work is
nasbench_suite/store/export.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nasbench_suite.errors import UsageError


def cmd_export(args: argparse.Namespace) -> int:
    from nasbench_suite.store.export import export_run
    from nasbench_suite.store.runfolder import RunFolder

    folder = RunFolder(args.run_dir).check()
    if not folder.finished():  # its genotype.json may be a leftover, not the search's result
        raise UsageError(f"{folder.path} has not finished its search (nasbench show "
                         f"{folder.path})")
    dest = Path(args.out) if args.out else folder.path / "network.pt2"
    if dest.is_dir():
        raise UsageError(f"--out {dest} is a folder; name the file to write")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed {args.seed} is outside [0, 2^32)")
    meta = export_run(folder, dest, args.seed)
    c, h, w = meta["input"]
    print(f"wrote {dest}: the {meta['space']} network of {folder.path} ({meta['layers']} "
          f"cells, C={meta['channels']}), input N x {c} x {h} x {w}, {meta['num_classes']} "
          f"logits; weights {meta['weights']}")
    print(f"load it with torch alone: torch.export.load({str(dest)!r}).module()")
    return 0


def register(sub: argparse._SubParsersAction,
             parents: dict[str, argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export", help="write a run's network as a file torch alone loads",
        description="Write the discrete network of a run's final genotype as a torch.export "
                    "program (torch.export.load(FILE).module() returns it, without this "
                    "suite), in eval mode at the run's input size (any batch size), "
                    "returning logits; the genotype (genotype.json) and a description "
                    "(nasbench.json) travel as the file's extra files. Its weights are "
                    "UNTRAINED (torch's initialisation after a fixed seed): a search trains a "
                    "supernet, not this network; train it from scratch (nasbench evaluate) "
                    "before predicting with it.")
    export.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    export.add_argument("--out", help="the file to write (default RUN_DIR/network.pt2)")
    export.add_argument("--seed", type=int,
                        help="seed of the initial weights (default: the run's seed)")
    export.set_defaults(func=cmd_export)
