"""`nasbench draw` (cells as pictures, read back as matplotlib objects, not pixels) and
`nasbench export` (a network file that torch alone loads, checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nasbench_suite.spaces import DARTS_V2, CellGenotype, Genotype

from nasbench_suite.cli.main import main
from nasbench_suite.report.cells import cell_inputs, draw_genotype
from nasbench_suite.store.export import GENOTYPE_FILE, META_FILE, exportable
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search

NB201 = Genotype("nb201", {"cell": CellGenotype(
    (("nor_conv_3x3", 0, 1), ("skip_connect", 0, 2), ("nor_conv_1x1", 1, 2),
     ("avg_pool_3x3", 0, 3), ("nor_conv_3x3", 1, 3), ("skip_connect", 2, 3)), (3,))})
#: one architecture per cell; several ops on one edge (2 -> 4 in cell1), cell2 shares cell0
RELAXED = Genotype(
    "relaxed",
    {"cell0": CellGenotype((("skip_connect", 0, 2), ("sep_conv_3x3", 1, 3),
                            ("skip_connect", 2, 4), ("sep_conv_3x3", 3, 5))),
     "cell1": CellGenotype((("sep_conv_3x3", 1, 2), ("skip_connect", 0, 3),
                            ("sep_conv_3x3", 2, 4), ("skip_connect", 2, 4),
                            ("skip_connect", 0, 5), ("sep_conv_3x3", 4, 5)))},
    ("cell0", "cell1", "cell0"))


def _panels(fig) -> list[tuple[str, set[str], dict[str, list[str]]]]:
    """Per visible panel: its title, its node ids, its edge labels (one entry per arrow)."""
    panels = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        nodes = {t.get_gid()[5:] for t in ax.texts if (t.get_gid() or "").startswith("node:")}
        edges: dict[str, list[str]] = {}
        for t in ax.texts:
            gid = t.get_gid() or ""
            if gid.startswith("edge:"):
                assert gid[5:] not in edges, f"two labels for {gid}"
                edges[gid[5:]] = t.get_text().split("\n")
        panels.append((ax.get_title(), nodes, edges))
    return panels


@pytest.mark.parametrize("genotype", [DARTS_V2, NB201, RELAXED], ids=lambda g: g.space)
def test_every_node_and_every_kept_op_is_drawn_once(genotype: Genotype) -> None:
    panels = _panels(draw_genotype(genotype))
    assert len(panels) == len(genotype.groups)
    inputs = cell_inputs(genotype)
    for (title, nodes, edges), (name, cell) in zip(panels, genotype.groups.items(),
                                                   strict=True):
        assert title.startswith(name)
        last = max(max(d for _, _, d in cell.edges), *cell.concat)
        # every input, every intermediate node, the output: one box each
        assert nodes == {*map(str, range(last + 1)), "out"}
        assert len(nodes) == last + 2
        expected: dict[str, list[str]] = {}
        for op, src, dst in cell.edges:
            expected.setdefault(f"{src}->{dst}", []).append(op)
        assert edges == expected  # one arrow per (input, node), its ops listed together
        assert sum(map(len, edges.values())) == len(cell.edges)
    assert inputs == (1 if genotype.space == "nb201" else 2)


def test_shared_groups_are_titled_with_their_cells() -> None:
    titles = [title for title, _, _ in _panels(draw_genotype(RELAXED))]
    assert titles == ["cell0 (cells 0, 2)", "cell1"]


def test_draw_writes_png_pdf_svg_and_one_group(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "arch.json"
    source.write_text(RELAXED.to_json())
    assert main(["draw", str(source), "--out", str(tmp_path / "pics"), "--svg"]) == 0
    written = [line.removeprefix("wrote ") for line in capsys.readouterr().out.splitlines()]
    assert sorted(Path(p).name for p in written) == [
        "arch-cells.pdf", "arch-cells.png", "arch-cells.svg"]
    assert all(Path(p).stat().st_size > 1000 for p in written)
    assert Path(written[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["draw", str(source), "--group", "cell1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "arch-cells-cell1.png").is_file()
    assert len(_panels(draw_genotype(RELAXED, "cell1"))) == 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nasbench_suite.config import resolve_config
    from tests.conftest import TINY

    cfg = resolve_config({**TINY, "out": str(tmp_path_factory.mktemp("runs"))})
    return run_search(cfg, progress=False, log=lambda _: None)


def test_export_loads_in_a_fresh_process_with_torch_alone(
        finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "net.pt2"
    assert main(["export", str(finished_run), "--out", str(dest)]) == 0
    assert "weights untrained" in capsys.readouterr().out
    folder = RunFolder(finished_run)
    shape = folder.space().shape
    x = torch.randn(3, shape.in_channels, shape.image_size, shape.image_size,
                    generator=torch.Generator().manual_seed(1))
    torch.save(x, tmp_path / "x.pt")
    # the same network in this process: the run's seed fixes its initial weights
    torch.manual_seed(int(folder.config_dict()["seed"]))
    expected = exportable(folder.space().network(folder.genotype()))(x).detach()
    script = (
        "import json, sys, torch\n"
        f"extra = {{{GENOTYPE_FILE!r}: '', {META_FILE!r}: ''}}\n"
        f"program = torch.export.load({str(dest)!r}, extra_files=extra)\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "out = program.module()(x)\n"
        f"torch.save(out, {str(tmp_path / 'out.pt')!r})\n"
        "print(json.dumps({'modules': sorted(m for m in sys.modules "
        "if m.startswith('nasbench')), 'extra': extra}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["modules"] == []  # torch alone loaded it
    assert Genotype.from_json(report["extra"][GENOTYPE_FILE]) == folder.genotype()
    meta = json.loads(report["extra"][META_FILE])
    assert meta["input"] == [shape.in_channels, shape.image_size, shape.image_size]
    assert meta["weights"].startswith("untrained")
    out = torch.load(tmp_path / "out.pt")
    assert out.shape == (3, shape.num_classes)
    torch.testing.assert_close(out, expected)
