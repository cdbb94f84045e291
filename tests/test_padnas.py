"""PAD-NAS: single-path steps, NSGA-II ranks, frequency pruning, cost bounds, stages, resume."""

from __future__ import annotations

import functools
import io
import json
import zlib

import nasbench_suite.spaces as spaces
import numpy as np
import pytest
import torch
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.padnas import PadNas, PadNasConfig, stage_schedule
from nasbench_suite.methods.padnas_prune import op_frequencies, prune_by_frequency
from nasbench_suite.methods.padnas_search import Encoding
from nasbench_suite.methods.training import nondominated_ranks

from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search

SHAPE = spaces.NetShape(4, 3, 1, 10, 8)


#: tiny networks are overhead-bound: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def fake_scorer(calls: list[spaces.Genotype] | None = None):
    """A fast, deterministic stand-in for inherited-weight accuracy: more convs score higher,
    with a per-architecture jitter so that fronts have several members."""

    def score(genotype: spaces.Genotype) -> float:
        if calls is not None:
            calls.append(genotype)
        ops = genotype.ops()
        convs = sum(op.startswith(("sep", "dil")) for op in ops) / max(len(ops), 1)
        jitter = (zlib.crc32(genotype.to_json().encode()) % 1000) / 1e4
        return 0.5 * convs + jitter

    return score


@functools.cache
def space_of(name: str) -> spaces.Space:
    """One space per name for the module: its cost table is counted once."""
    return spaces.create_space(name, SHAPE)


def make(space_name: str = "restricted", epochs: int = 2, scorer=None,
         **hp) -> PadNas:
    space = space_of(space_name)
    torch.manual_seed(0)
    supernet = space.supernet()
    # The evidence and chance rules have tests of their own; off here, the tiny searches
    # (a dozen architectures, a fake scorer) would prune nothing.
    cfg = PadNasConfig(**{"population": 6, "generations": 2, "stages": min(epochs, 4),
                          "min_evidence": 0, "chance_margin": 0.0, **hp})
    ctx = SearchContext(device=torch.device("cpu"), epochs=epochs, steps_per_epoch=1, seed=3,
                        report_accuracy=scorer or fake_scorer(),
                        choice_accuracy=scorer or fake_scorer())
    return PadNas(space, supernet, cfg, ctx)


def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def op_state(method: PadNas) -> dict[tuple[int, int, str], list[torch.Tensor]]:
    """Every tensor (parameters and BN buffers) of every op module, per (cell, edge, op)."""
    out = {}
    for i, cell in enumerate(method.supernet.cells):
        for e, edge in enumerate(cell.edges):
            for name, module in edge.items():
                out[(i, e, name)] = [t.detach().clone() for t in module.state_dict().values()]
    return out


def on_path(method: PadNas, path: torch.Tensor) -> set[tuple[int, int, str]]:
    layout = method.layout
    return {(i, e, layout.ops[o]) for i, g in enumerate(layout.cell_groups)
            for e, o in torch.nonzero(path[g]).tolist()}


@pytest.mark.parametrize("space_name", ["restricted", "relaxed"])
def test_single_path_step_touches_only_sampled_ops(space_name: str) -> None:
    method = make(space_name)
    # Two steps: the second must leave the first path's ops alone despite their momentum.
    for _ in range(2):
        state = method.generator.get_state()
        path = method.sample_path()
        method.generator.set_state(state)
        before = op_state(method)
        method.step(batch(), None)
        after = op_state(method)
        sampled = on_path(method, path)
        for key, tensors in before.items():
            same = all(torch.equal(a, b) for a, b in zip(tensors, after[key], strict=True))
            if key in sampled:
                if tensors:  # parametric ops and BN-after-pool change
                    assert not same, f"sampled op {key} did not train"
            else:
                assert same, f"op {key} off the path changed"


def test_paths_are_architectures_of_the_space() -> None:
    for space_name, inputs in (("restricted", 2), ("relaxed", None)):
        method = make(space_name)
        layout = method.layout
        for _ in range(20):
            path = method.sample_path()
            if "none" in layout.ops:
                assert not path[:, :, layout.ops.index("none")].any()
            assert (path.sum(-1) <= 1).all(), "one op per edge"
            for node in range(2, 2 + layout.nodes):
                ids = layout.node_edges(node)
                taken = path[:, ids].any(-1).sum(-1)
                assert (taken == (inputs or len(ids))).all()


def test_uniform_sampling_over_remaining_ops() -> None:
    active = torch.zeros(1, 2, 3, dtype=torch.bool)
    active[0, 0, :] = True
    active[0, 1, 1] = True
    enc = Encoding(active, [[0, 1]], None)
    assert len(enc) == 1  # the one-op edge is fixed, not a gene
    x = enc.sample(np.random.default_rng(0).random((3000, 1)))
    counts = np.bincount(x[:, 0], minlength=3)
    assert counts.min() > 900
    assert torch.allclose(enc.edge_probability()[0, 0], torch.full((3,), 1 / 3))


def test_nondominated_ranks_of_a_hand_made_population() -> None:
    # (-accuracy, cost), both minimised.
    F = np.array([
        [-0.90, 10.0],  # 0: front 0
        [-0.80, 5.0],   # 1: front 0
        [-0.70, 2.0],   # 2: front 0
        [-0.85, 12.0],  # 3: dominated by 0 -> front 1
        [-0.75, 6.0],   # 4: dominated by 1 -> front 1
        [-0.60, 3.0],   # 5: dominated by 2 -> front 1
        [-0.70, 7.0],   # 6: dominated by 1, 4 (4 is front 1) -> front 2
        [-0.50, 20.0],  # 7: dominated by 0, 3, 6 -> front 3
        [-0.80, 5.0],   # 8: equal to 1, not dominated -> front 0
    ])
    assert nondominated_ranks(F).tolist() == [0, 0, 0, 1, 1, 1, 2, 3, 0]


def test_pruning_removes_exactly_the_ops_at_or_below_the_threshold() -> None:
    active = torch.ones(1, 4, 4, dtype=torch.bool)
    active[0, 1, 3] = False  # already pruned: stays pruned
    freq = torch.tensor([[
        [0.50, 0.01, 0.005, 0.485],   # 0.01 and 0.005 go (at or below)
        [0.98, 0.011, 0.009, 0.0],    # only 0.009 goes
        [0.0, 0.0, 0.0, 0.0],         # no architecture took this edge: keeps everything
        [0.25, 0.25, 0.25, 0.25],     # nothing goes
    ]])
    keep = prune_by_frequency(active, freq, 0.01)
    assert keep[0].tolist() == [
        [True, False, False, True],
        [True, True, False, False],
        [True, True, True, True],
        [True, True, True, True],
    ]
    # An edge never loses its last op: with a threshold above every frequency, the most
    # frequent op stays.
    keep = prune_by_frequency(active, freq, 0.99)
    assert keep.sum(-1).tolist() == [[1, 1, 4, 1]]
    assert keep[0, 0, 0] and keep[0, 1, 0]


def test_op_frequencies_count_per_edge() -> None:
    masks = torch.zeros(4, 1, 2, 3, dtype=torch.bool)
    masks[0, 0, 0, 0] = masks[1, 0, 0, 0] = masks[2, 0, 0, 2] = True  # edge 0: 2x op0, 1x op2
    freq = op_frequencies(masks)
    assert torch.allclose(freq[0, 0], torch.tensor([2 / 3, 0, 1 / 3], dtype=torch.float64))
    assert freq[0, 1].sum() == 0  # never taken


@pytest.mark.parametrize("space_name", ["restricted", "relaxed"])
def test_no_candidate_outside_the_cost_bounds_survives(space_name: str) -> None:
    calls: list[spaces.Genotype] = []
    method = make(space_name, epochs=2, scorer=fake_scorer(calls), cost_min=0.45,
                  cost_max=0.55, sample_retries=1)
    lo, hi = method.cost_bounds()
    archive, _, summary = method.search(0)
    assert summary["discarded"] > 0, "the window must discard candidates for this test"
    for c in archive:
        assert c.feasible == (lo <= c.cost <= hi)
        assert np.isnan(c.acc) != c.feasible  # discarded candidates are never scored
    assert len(calls) == summary["scored"] == sum(c.feasible for c in archive)
    for genotype in calls:
        assert lo <= method.space.genotype_cost(genotype).macs <= hi
    # Through the stages: every front, the series and the returned genotype are within bounds.
    for epoch in range(2):
        method.begin_epoch(epoch)
        for event in method.end_epoch(epoch):
            for point in event.get("front", []):
                assert lo <= point["cost"] <= hi
    series = method.series()
    assert series, "the final search records its Pareto front"
    for point in series:
        assert lo <= point["macs"] <= hi
        assert lo <= method.space.genotype_cost(
            spaces.Genotype.from_dict(point["genotype"])).macs <= hi
    assert lo <= method.space.genotype_cost(method.genotype()).macs <= hi
    accs = [p["val_acc"] for p in series]  # chosen by held-out accuracy (its own split)
    assert method.genotype().to_dict() == series[int(np.argmax(accs))]["genotype"]


def test_search_is_deterministic_per_seed_and_prunes_between_stages() -> None:
    runs = []
    for _ in range(2):
        method = make("restricted", epochs=2)
        events = []
        for epoch in range(2):
            method.begin_epoch(epoch)
            events += method.end_epoch(epoch)
        runs.append((events, method.genotype().to_dict(), method.active.clone()))
    assert json.dumps(runs[0][0], sort_keys=True) == json.dumps(runs[1][0], sort_keys=True)
    assert runs[0][1] == runs[1][1]
    kinds = [e["kind"] for e in runs[0][0]]
    assert kinds.count("search") == 2 and kinds.count("prune") == 1  # no prune after the last
    prune = next(e for e in runs[0][0] if e["kind"] == "prune")
    assert prune["remaining_ops"] == int(runs[0][2].sum())
    assert prune["remaining_ops"] + len(prune["removed"]) == 2 * 14 * 7
    assert (runs[0][2].sum(-1) >= 1).all(), "every edge keeps an op"


def test_stage_schedule() -> None:
    assert stage_schedule(10, 4, None) == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="fewer"):  # never silently fewer stages
        stage_schedule(2, 4, None)
    assert stage_schedule(240, 4, [120, 80, 40]) == [120, 80, 40]
    with pytest.raises(ValueError, match="sum to 6"):
        stage_schedule(10, 4, [3, 3])


def test_finetune_lr_and_stage_metrics() -> None:
    method = make("restricted", epochs=4, stages=2, w_lr=0.1, finetune_lr=0.02, w_lr_min=0.0)
    method.begin_epoch(0)
    assert method.epoch_metrics()["lr"] == pytest.approx(0.1)
    assert method.epoch_metrics()["stage"] == 1
    method.begin_epoch(2)
    assert method.epoch_metrics()["lr"] == pytest.approx(0.02)
    assert method.epoch_metrics()["stage"] == 2


def test_latency_table_is_measured_once_and_logged() -> None:
    method = make("restricted", epochs=1, cost="latency", latency_repeats=1, latency_warmup=0,
                  cost_min=0.0, cost_max=1.0)
    method.begin_epoch(0)
    table = method.latency
    assert table is not None and table.shape == method.layout.shape
    none = method.layout.ops.index("none")
    assert (table[:, :, none] == 0).all() and (table[:, :, :none].sum() + table[:, :, none + 1:]
                                               .sum()) > 0
    method.begin_epoch(0)
    assert method.latency is table  # not measured again
    events = method.end_epoch(0)
    latency = [e for e in events if e["kind"] == "latency_table"]
    assert len(latency) == 1 and latency[0]["unit"] == "ms per image"
    assert method.series()[0]["cost"] == pytest.approx(
        float(table[method.space.mask_of(
            spaces.Genotype.from_dict(method.series()[0]["genotype"]))].sum()))


@pytest.mark.parametrize("bad", [{"cost": "energy"}, {"cost_min": 0.7, "cost_max": 0.2},
                                 {"prune_threshold": 1.0}, {"stage_epochs": [0, 1]},
                                 {"frequency_pool": "all"}])
def test_bad_hyper_parameters_are_refused(tiny_config, bad) -> None:
    with pytest.raises(UsageError):
        tiny_config(method="padnas", **bad)


def test_mismatched_stage_epochs_are_refused() -> None:
    with pytest.raises(ValueError, match="stage_epochs"):
        make(epochs=2, stage_epochs=[1, 2])


def test_state_round_trip_resumes_identically() -> None:
    """Stop after a stage boundary (search and prune done), restore, finish: same result."""

    def finish(method: PadNas) -> tuple[str, list[torch.Tensor]]:
        method.begin_epoch(1)
        method.step(batch(), None)
        events = method.end_epoch(1)
        out = json.dumps([events, method.genotype().to_dict(), method.series(),
                          method.epoch_metrics()], sort_keys=True)
        return out, [p.detach().clone() for p in method.supernet.parameters()]

    first = make("restricted", epochs=2)
    first.begin_epoch(0)
    first.step(batch(), None)
    first.end_epoch(0)
    buffer = io.BytesIO()
    torch.save({"method": first.state_dict(), "supernet": first.supernet.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # what the loop's checkpoints allow

    second = make("restricted", epochs=2)
    second.supernet.load_state_dict(state["supernet"])
    second.load_state_dict(state["method"])
    assert torch.equal(second.active, first.active)
    a, weights_a = finish(first)
    b, weights_b = finish(second)
    assert a == b
    assert all(torch.equal(x, y) for x, y in zip(weights_a, weights_b, strict=True))


@pytest.mark.slow
def test_whole_run_on_digits(tiny_config) -> None:
    cfg = tiny_config(method="padnas", space="relaxed", population=4, generations=1,
                      max_train_images=64, bn_calib_batches=1, epochs=2, stages=2,
                      min_evidence=0, chance_margin=0.0)
    run_dir = run_search(cfg, progress=False, log=lambda _: None)
    run = RunFolder(run_dir)
    summary = run.summary()
    # reported on the scoring split; the searches chose on their own val split
    assert summary.inherited.split == "score"
    # a single-path supernet is its derived path: no gap is measured (missing, never 0)
    assert summary.inherited.gap is None and summary.inherited.supernet_acc is None
    assert summary.series and all("val_acc" in p and "acc" in p for p in summary.series)
    kinds = [event["kind"] for event in run.events()]
    assert kinds == ["schedule", "op_visits", "search", "prune", "op_visits", "search"]


# -- pruning on evidence, kept checkpoints (the must-show) ----------------------------
def test_fewer_architectures_than_the_evidence_minimum_prune_nothing() -> None:
    G, E, O = 2, 3, 4
    active = torch.ones(G, E, O, dtype=torch.bool)
    masks = torch.zeros(30, G, E, O, dtype=torch.bool)
    masks[..., 0] = True  # every counted architecture uses op 0: ops 1-3 have frequency 0
    freq, counts = op_frequencies(masks), masks.any(-1).sum(0)
    assert int(counts.min()) == 30
    kept = prune_by_frequency(active, freq, 0.01, counts, min_evidence=100)
    assert torch.equal(kept, active)  # 30 < 100 architectures: no evidence, nothing goes
    pruned = prune_by_frequency(active, freq, 0.01, counts, min_evidence=30)
    assert torch.equal(pruned, masks[0])  # with enough evidence the same votes prune


def test_the_default_evidence_makes_the_threshold_one_architecture() -> None:
    cfg = PadNasConfig()
    assert cfg.min_evidence * cfg.prune_threshold >= 1
    from nasbench_suite.config import load_preset

    mini = load_preset("mini")["methods"]["padnas"]["hp"]
    assert mini["min_evidence"] * mini["prune_threshold"] >= 1


def test_a_stage_at_chance_accuracy_prunes_nothing() -> None:
    chance = make("restricted", epochs=2, scorer=lambda genotype: 0.1, chance_margin=0.05)
    before = chance.active.clone()
    events = []
    for epoch in range(2):
        chance.begin_epoch(epoch)
        events += chance.end_epoch(epoch)
    kinds = [e["kind"] for e in events]
    assert "prune" not in kinds and kinds.count("prune_skipped") == 1
    assert torch.equal(chance.active, before)
    # the same searches with a scorer above chance do prune
    above = make("restricted", epochs=2, chance_margin=0.05)
    for epoch in range(2):
        above.begin_epoch(epoch)
        above.end_epoch(epoch)
    assert int(above.active.sum()) < int(before.sum())


def test_one_checkpoint_is_kept_per_stage(tiny_config) -> None:
    cfg = tiny_config(method="padnas", space="restricted", population=4, generations=1,
                      max_train_images=64, bn_calib_batches=1, epochs=3, stages=3)
    run = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    kept = run.kept_checkpoints()
    assert sorted(kept) == ["stage-1", "stage-2", "stage-3"]
    # each is the state after its stage's last epoch (stages of one epoch here)
    assert [run.load_kept(f"stage-{s}")["epoch"] for s in (1, 2, 3)] == [1, 2, 3]
    prune = [e for e in run.events() if e["kind"] in ("prune", "prune_skipped")]
    assert len(prune) == 2  # stages 1 and 2 end with a pruning decision, logged
    with pytest.raises(UsageError, match="stage-9"):
        run.load_kept("stage-9")
