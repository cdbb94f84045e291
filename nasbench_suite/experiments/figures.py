"""`nasbench figures`: every table and figure the docs show, rebuilt from results/reference/.

The same inputs give the same files (a test compares the bytes). The build keeps a manifest
of the files it wrote, and removes only files that a previous build listed there and this
one did not write. The manifest is a committed file, so its entries are not trusted: each
must name a file inside the output folder once links are resolved.
"""

from __future__ import annotations

from pathlib import Path

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments import write_report
from nasbench_suite.experiments.base import MANIFEST
from nasbench_suite.files import atomic_write, inside, output_dir, read_json, write_json
from nasbench_suite.report.plots import BUILD, drawing_build, make_plots, save_figure
from nasbench_suite.report.tables import DEFAULT_METRICS, make_table
from nasbench_suite.store.index import load_index
from nasbench_suite.store.runfolder import find_runs

#: what ``nasbench figures`` builds from results/reference/: the files the docs show
FIGURE_TABLES = ("table.md", "table.tex", "table.csv")
#: the list of files ``nasbench figures`` wrote; it only ever removes files listed there
FIGURES_MANIFEST = "manifest.json"
FIGURE_KINDS = ("acc-flops", "acc-params", "inherited-acc-flops", "param-free", "search-cost",
                "arch-weights")


def _previous_build(manifest: Path, out: Path) -> list[Path]:
    """The files the previous build wrote, each checked to lie inside ``out`` (links
    resolved): an entry outside is refused, never deleted."""
    if not manifest.exists():
        return []
    names = read_json(manifest).get("files", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{manifest} is not a figures manifest (its 'files' is not a list "
                         "of names)")
    root = out.resolve()
    paths = []
    for name in names:
        path = out / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not inside(path, out) \
                or path.resolve() == root:
            raise UsageError(f"{manifest} lists {name!r}, which is not inside {out}: refusing "
                             "to delete it (remove the entry)")
        paths.append(path)
    return paths


def build_figures(reference: Path, out: Path) -> list[Path]:
    """Every table and figure the docs show, from ``reference`` only, into ``out``: the
    tables and figures of all its runs, and the report of each packaged experiment
    (``nasbench reproduce``) in ``out/<experiment>/``. Files a previous build wrote and this
    one did not (figures of runs no longer in the reference) are removed; nothing else in
    ``out`` is ever touched (the build keeps a manifest of what it wrote, and an entry of it
    that leads outside ``out`` is refused before anything is written)."""

    if not reference.is_dir():
        raise UsageError(f"no reference folder {reference}")
    output_dir(out)
    try:
        find_runs([reference])
    except UsageError:
        raise UsageError(f"{reference} holds no run folders yet: commit reference runs there "
                         "first (or give --reference DIR)") from None
    manifest = out / FIGURES_MANIFEST
    before = _previous_build(manifest, out)
    df = load_index([reference])
    written = []
    for name, fmt in zip(FIGURE_TABLES, ("markdown", "latex", "csv"), strict=True):
        atomic_write(out / name, make_table(df, DEFAULT_METRICS, fmt))
        written.append(out / name)
    for stem, fig in make_plots([reference], FIGURE_KINDS, first_seed_only=True):
        written.extend(save_figure(fig, out, stem, ("png", "pdf")))
    # PNG and PDF bytes depend on the matplotlib that drew them; tables do not.
    write_json(out / BUILD, drawing_build())
    written.append(out / BUILD)
    for experiment in sorted(reference.glob(f"*/{MANIFEST}")):
        written.extend(write_report(experiment.parent, out / experiment.parent.name))
    for path in before:
        if path not in written and path.is_file():
            path.unlink()
    names = sorted(str(p.relative_to(out)) for p in written)
    write_json(manifest, {"files": names})
    return [*written, manifest]
