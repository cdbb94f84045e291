"""Plain-text descriptions for `nasbench show`: a genotype node by node, why a search
stopped, and a sweep folder's overview.

They read the run's own records (summary.json, events.jsonl), never re-run anything, so
`show` says what the method did (GOLD-NAS reaching its FLOPs floor, DARTS-ES's eigenvalue
rule) rather than a generic "stopped by the method".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

#: GOLD-NAS's record reasons (methods/gold.py end_epoch) that end the search
_GOLD_STOPS = {"floor": "GOLD-NAS reached its FLOPs floor",
               "minimal": "GOLD-NAS could prune nothing more (every node down to its last "
                          "input)"}


def genotype_lines(genotype: Any) -> list[str]:
    """One line per intermediate node, grouped by cell group: ``node <- op(input), ...``.
    Input nodes are named as DARTS's own plots name them (c_{k-2}, c_{k-1}; nb201's one
    input c_{k-1}), intermediate nodes by their number."""
    inputs = 1 if genotype.space == "nb201" else 2
    lines: list[str] = []
    for name, cell in genotype.groups.items():
        shared = [i for i, g in enumerate(genotype.cell_groups) if g == name]
        where = f" (cells {', '.join(map(str, shared))})" if len(shared) > 1 else ""
        lines.append(f"{name}{where}: output = concat({', '.join(map(str, cell.concat))})")
        for node in sorted({dst for _, _, dst in cell.edges}):
            feeds = ", ".join(f"{op}({node_name(src, inputs)})"
                              for op, src in sorted(cell.inputs_of(node),
                                                    key=lambda e: (e[1], e[0])))
            lines.append(f"  {node} <- {feeds}")
    return lines


def node_name(node: int, inputs: int) -> str:
    """A node's label: an input node as the cell input it is, else its number."""
    if node < inputs:
        return "c_{k-1}" if node == inputs - 1 else f"c_{{k-{inputs - node}}}"
    return str(node)


def stop_line(summary: Any, epoch_cap: int, events: list[dict[str, Any]]) -> str:
    """``epochs run / cap`` and why the search ended, from the method's own records."""
    run = f"epochs run {summary.epochs_run} / {epoch_cap}"
    if summary.stop_reason != "method":
        return f"{run} (the epoch budget)" if summary.epochs_run >= epoch_cap else run
    return f"{run}: stopped early, {method_stop(summary, events)}"


def method_stop(summary: Any, events: list[dict[str, Any]]) -> str:
    """The method's reason for an early stop, in words."""
    final = summary.final
    if "es_stopped_at" in final:
        return (f"DARTS-ES's eigenvalue rule fired at epoch {int(final['es_stopped_at'])} and "
                f"returned the architecture of epoch {int(final.get('es_returned_epoch', 0))}")
    reasons = [ev.get("reason") for ev in events
               if ev.get("kind") == "record" and ev.get("reason") in _GOLD_STOPS]
    floor = final.get("flops_floor")
    if not reasons and floor is not None:  # record_final off: no record of the last point
        reasons = ["floor" if summary.derived.macs < floor else "minimal"]
    if reasons:
        text = _GOLD_STOPS[reasons[-1]]
        if reasons[-1] == "floor" and floor is not None:
            text += (f" ({summary.derived.macs / 1e6:.3g} M multiply-adds, below the floor "
                     f"of {floor / 1e6:.3g} M)")
        return text
    return "by the method's own stopping rule"


def sweep_lines(root: Path, best: int = 5) -> list[str]:
    """A folder of run folders (a sweep's output): how many, their status, the failures'
    reasons and the best finished runs by the derived network's inherited accuracy."""
    from nasbench_suite.store.runfolder import FAILED, FINISHED, find_runs

    folders = find_runs([root])
    status = {f: f.status() for f in folders}
    counts = Counter(status.values())
    lines = [f"sweep folder: {root}",
             f"{len(folders)} trial(s): " + ", ".join(f"{n} {s}" for s, n in
                                                      sorted(counts.items()))]
    for folder, state in status.items():
        if state == FAILED:
            failure = folder.failure()
            lines.append(f"  failed: {folder.name}: {failure.reason if failure else 'unknown'}")
        elif state != FINISHED:
            lines.append(f"  {state}: {folder.name} ({folder.epochs_done()} epoch(s) done)")
    done = []
    for folder, state in status.items():
        if state == FINISHED:
            summary = folder.summary()
            done.append((summary.inherited.derived_acc, folder, summary))
    ranked = sorted((d for d in done if d[0] is not None), key=lambda d: -d[0])[:best]
    if ranked:
        split = ranked[0][2].inherited.split
        lines.append(f"best finished runs (derived network, inherited weights, {split} "
                     "split):")
        for acc, folder, summary in ranked:
            lines.append(f"  {acc:.4f}  {folder.name}  ({summary.derived.macs / 1e6:.3g} M "
                         f"multiply-adds, {summary.derived.params / 1e6:.3g} M params, "
                         f"{summary.epochs_run} epochs, {summary.search_time_s:.1f} s)")
    lines.append("details of one run: nasbench show RUN_DIR; a table: nasbench table "
                 f"{root}")
    return lines
