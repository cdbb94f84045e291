"""GOLD-NAS: gates, the one-level step, pruning, the lambda schedule, the series, resume."""

from __future__ import annotations

import copy
import functools
import io
import itertools
import math
from pathlib import Path
from typing import Any

import nasbench_suite.spaces as spaces
import pytest
import torch
from nasbench_suite.methods import get_method
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.gold import Gold, GoldConfig
from nasbench_suite.spaces import Genotype, NetShape
from torch.utils.flop_counter import FlopCounterMode

from nasbench_suite.cli.main import main
from nasbench_suite.config import RunConfig, resolve_config, run_config
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import prepare, run_search
from tests.conftest import TINY

#: A search that prunes fast: on the tiny config it records a stable architecture and
#: passes its floor within 6 epochs (the epoch budget is a cap it never reaches).
FAST: dict[str, Any] = {
    "method": "gold", "space": "relaxed", "epochs": 12, "batch_size": 64,
    "hp.lambda0": 0.05, "hp.d0": 0.02, "hp.lambda_factor": 2.0, "hp.eta_max": 0.1, "hp.n0": 5,
    "hp.stable_epochs": 0, "hp.min_flops_fraction": 0.85, "hp.auxiliary_weight": 0.0,
}


#: tiny networks are overhead-bound: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def tiny_space(name: str, layers: int) -> spaces.Space:
    """One space per shape for the whole module: its cost table is counted once."""
    return spaces.create_space(name, NetShape(4, layers, 1, 10, 8))


def make_gold(space_name: str = "relaxed", layers: int = 3, **hp: Any) -> Gold:
    space = tiny_space(space_name, layers)
    cfg = GoldConfig(**{"auxiliary_weight": 0.0, "min_flops": 0.0, **hp})
    supernet = space.supernet(auxiliary=Gold.uses_auxiliary(cfg))
    ctx = SearchContext(device=torch.device("cpu"), epochs=100, steps_per_epoch=1, seed=0)
    return Gold(space, supernet, cfg, ctx)


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def set_gates(method: Gold, gates: dict[tuple[int, int, int], float], rest: float = 0.5) -> None:
    """Alphas whose sigmoid gates are ``rest`` except the listed (group, edge, op) ones."""
    w = torch.full(method.layout.shape, rest)
    for key, value in gates.items():
        w[key] = value
    with torch.no_grad():
        method.alpha.copy_(torch.logit(w))


def pruned_set(ops: list[dict[str, Any]]) -> set[tuple[int, int, int]]:
    return {(p["group"], p["edge"], p["op"]) for p in ops}


# -- gates and the one-level step ------------------------------------------------------------

def test_gates_are_elementwise_sigmoids() -> None:
    method = make_gold()
    with torch.no_grad():
        method.alpha.normal_()
    weights, active = method.mixing()
    assert active.all()
    torch.testing.assert_close(weights, torch.sigmoid(method.alpha))
    with torch.no_grad():
        method.alpha[1, 3, 0] += 2.0
    changed = (method.mixing()[0] != weights).nonzero().tolist()
    assert changed == [[1, 3, 0]]  # no softmax: a gate depends on its own alpha only


def test_one_level_step_uses_one_minibatch_for_weights_and_alphas() -> None:
    method = make_gold(lambda0=0.01)
    x, y = batch()
    # The expected gradients, from the same minibatch, on a copy.
    twin = copy.deepcopy(method)
    weights, active = twin.mixing()
    loss, _ = twin.forward_loss((x, y), weights, active)
    (loss + twin.lam * twin.regulariser()).backward()
    a_grad = twin.alpha.grad.clone()
    w_before = [p.detach().clone() for p in method.supernet.parameters()]
    a_before = method.alpha.detach().clone()
    stats = method.step((x, y), None)
    assert {"loss", "acc", "reg", "objective"} <= set(stats)
    # SGD's first step with momentum: p -= lr * grad.
    torch.testing.assert_close(method.alpha.detach(), a_before - method.cfg.a_lr * a_grad)
    moved = [not torch.equal(a, p) for a, p in zip(w_before, method.supernet.parameters(),
                                                      strict=True)]
    assert sum(moved) > len(moved) // 2


def test_gold_is_one_level_and_draws_no_validation_split(tiny_config) -> None:
    assert get_method("gold").bilevel is False
    search = prepare(tiny_config(method="gold", space="relaxed"))
    assert search.val is None
    assert len(search.train) == 128  # the whole (capped) training set


# -- pruning --------------------------------------------------------------------------------

def test_pruning_rule_on_hand_made_gates() -> None:
    # Cell 0: node 2 has 4 ops (edges 0, 1), node 3 has 6 (edges 2-4), node 4 has 8 (5-8).
    low = (0, 0, 1)     # w_hat = 0.005 / 1.505 = 0.0033  -> eta_min
    weak = (0, 3, 0)    # w_hat = 0.08 / 2.58   = 0.031   -> the weakest, eta_max
    weaker = (0, 6, 1)  # w_hat = 0.15 / 3.65   = 0.041   -> eta_max in the next round
    gates = {low: 0.005, weak: 0.08, weaker: 0.15}
    for n0, eta_max, expected in [(1, 0.05, {low, weak}), (2, 0.05, {low, weak, weaker}),
                                  (4, 0.05, {low, weak, weaker}), (4, 0.035, {low, weak}),
                                  (4, 0.02, {low})]:
        method = make_gold(n0=n0, eta_max=eta_max)
        set_gates(method, gates)
        ops = method.prune()
        assert pruned_set(ops) == expected, (n0, eta_max)
        assert ops[0]["rule"] == "eta_min" and all(p["rule"] == "eta_max" for p in ops[1:])
        assert int((~method.active).sum()) == len(expected)


def test_pruning_normalises_over_every_edge_of_the_node() -> None:
    method = make_gold(n0=1)
    # Node 5 (edges 9-13, 10 ops): w_hat of one op = 0.04 / (9 x 0.5 + 0.04) = 0.0088, which
    # the public code's first-edge-only sum would not see for edges 10-13.
    set_gates(method, {(2, 12, 1): 0.04})
    w_hat, n = method.node_normalised(method.alpha.detach(), method.active)
    assert float(n[2, 12, 0]) == 10
    assert float(w_hat[2, 12, 1]) == pytest.approx(0.04 / 4.54)
    torch.testing.assert_close(w_hat[2, 9:14].sum(), torch.tensor(1.0))
    assert pruned_set(method.prune()) == {(2, 12, 1)}


def test_saturated_gates_and_a_huge_lambda_stay_finite() -> None:
    method = make_gold()
    with torch.no_grad():
        method.alpha[0, 9:14] = -1000.0  # every gate into node 5 of cell 0 underflows to 0
        method.alpha[1, 0, 0] = 1000.0
    w_hat, _ = method.node_normalised(method.alpha.detach(), method.active)
    torch.testing.assert_close(w_hat[0, 9:14].sum(), torch.tensor(1.0))
    method.lam = 1e12
    stats = method.step(batch(), None)
    assert math.isfinite(stats["loss"]) and math.isfinite(stats["objective"])
    assert torch.isfinite(method.alpha).all()
    assert len(method.prune()) > 0


def test_a_node_never_loses_its_last_input() -> None:
    method = make_gold(eta_min=0.6, eta_max=0.9)  # every w_hat is below eta_min
    method.prune()
    counts = method.active.sum(-1)  # (G, E)
    for node in range(2, 6):
        per_node = counts[:, method.layout.node_edges(node)].sum(-1)
        assert per_node.tolist() == [1, 1, 1]
    for _ in range(3):
        method.end_epoch(0)
    assert int(method.active.sum()) == 4 * 3
    genotype = method.genotype()  # builds: every node is fed
    method.space.network(genotype)


def test_a_pruned_op_never_returns_and_is_never_called_again() -> None:
    method = make_gold()
    supernet = method.supernet
    calls: dict[tuple[int, int, str], int] = {}

    def hook(key: tuple[int, int, str]):
        def count(*_: Any) -> None:
            calls[key] = calls.get(key, 0) + 1
        return count

    for i, cell in enumerate(supernet.cells):
        for e, edge in enumerate(cell.edges):
            for name, module in edge.items():
                module.register_forward_hook(hook((i, e, name)))
    method.step(batch(), None)
    assert len(calls) == 3 * 14 * 2
    target = (1, 5, 1)  # cell 1, edge 5, sep_conv_3x3
    set_gates(method, {target: 1e-4})
    method.end_epoch(0)
    assert not method.active[target]
    before = dict(calls)
    with torch.no_grad():
        method.alpha[target] = 20.0  # a strong gate cannot bring it back
    for epoch in range(1, 3):
        method.step(batch(), None)
        mask = method.active.clone()
        method.end_epoch(epoch)
        assert not (method.active & ~mask).any()  # the mask only shrinks
    assert not method.active[target]
    key = (1, 5, "sep_conv_3x3")
    assert calls[key] == before[key]
    ops = method.space.ops
    alive = [k for k in calls if method.active[k[0], k[1], ops.index(k[2])]]
    assert alive and all(calls[k] > before[k] for k in alive)


def test_genotype_from_mask_keeps_exactly_the_active_ops() -> None:
    for name in ("relaxed", "restricted"):
        method = make_gold(name)
        gen = torch.Generator().manual_seed(3)
        keep = (torch.rand(method.layout.shape, generator=gen) < 0.5) & method.active
        genotype = method.space.genotype_from_mask(keep)
        assert torch.equal(method.space.mask_of(genotype), keep)


def test_restricted_space_masks_the_zero_op_and_prunes_shared_cells() -> None:
    method = make_gold("restricted")
    zero = method.space.ops.index("none")
    assert not method.active[..., zero].any() and method.active.sum() == 2 * 14 * 7
    assert method.mixing()[0][..., zero].eq(0).all()
    method.step(batch(), None)
    set_gates(method, {(0, 2, 4): 1e-4, (1, 7, 6): 1e-4})
    assert pruned_set(method.prune()) >= {(0, 2, 4), (1, 7, 6)}
    assert "none" not in method.genotype().ops()


# -- the lambda schedule and the stable rule ----------------------------------------------------

def test_lambda_schedule_on_scripted_pruning_counts() -> None:
    method = make_gold()  # lambda0 = 0, d0 = 1e-5, factor 2, n0 = 4
    script = [0, 0, 0, 5, 1, 4, 0, 3]
    expected = [(2e-5, 2e-5), (6e-5, 4e-5), (14e-5, 8e-5), (7e-5, 1e-5), (9e-5, 2e-5),
                (4.5e-5, 1e-5), (6.5e-5, 2e-5), (10.5e-5, 4e-5)]
    for count, (lam, d) in zip(script, expected, strict=True):
        method.update_lambda(count)
        assert (method.lam, method.d) == pytest.approx((lam, d), rel=1e-12)


def fake_pruning(method: Gold, script: list[int], op: str = "sep_conv_3x3") -> None:
    """Replace the pruning rule by one that removes ``script[k]`` ``op`` ops at call k (in
    normal cells only, where a skip connection costs no FLOPs)."""
    queue = list(script)
    o = method.space.ops.index(op)
    normal = [g for g, r in enumerate(method.layout.group_reduction) if not r]

    def prune() -> list[dict[str, Any]]:
        out = []
        candidates = [(g, e) for g, e in method.active[..., o].nonzero().tolist() if g in normal]
        for g, e in candidates[: queue.pop(0)]:
            method.active[g, e, o] = False
            out.append({"group": g, "edge": e, "op": o, "w_hat": 0.0, "rule": "eta_min"})
        method._refresh()
        return out

    method.prune = prune  # type: ignore[method-assign]


def test_stable_rule_records_the_architecture_before_the_pruning() -> None:
    method = make_gold(stable_epochs=3, min_flops=0.0)
    fake_pruning(method, [0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 1])
    recorded = []
    for epoch in range(11):
        before = method.active.clone()
        events = method.end_epoch(epoch)
        for ev in events:
            if ev["kind"] == "record":
                recorded.append(epoch)
                assert ev["macs"] == method.space.cost.mask_cost(before).macs
    # Three stable epochs are not enough; four are; a streak of one is not.
    assert recorded == [8]
    assert method.epoch_metrics()["lambda"] > 0
    assert [p["reason"] for p in method.series()] == ["stable"]


def test_a_point_at_the_cost_of_the_last_one_replaces_it() -> None:
    method = make_gold(stable_epochs=0, min_flops=0.0)
    fake_pruning(method, [0, 1, 0, 1], op="skip_connect")  # skips in normal cells: 0 FLOPs
    events = [ev for epoch in range(4) for ev in method.end_epoch(epoch)]
    records = [ev for ev in events if ev["kind"] == "record"]
    assert [(r["epoch"], r["index"]) for r in records] == [(1, 0), (3, 0)]
    assert records[1]["replaces"] == 0
    (point,) = method.series()
    assert point["epoch"] == 3 and point["active_ops"] == 3 * 28 - 1


def test_the_epoch_budget_records_the_last_architecture() -> None:
    method = make_gold(min_flops=0.0)
    fake_pruning(method, [2])
    events = method.end_epoch(method.ctx.epochs - 1)
    assert [ev["kind"] for ev in events] == ["prune", "record"]
    assert events[1]["reason"] == "epochs" and not method.finished()
    assert method.series()[0]["active_ops"] == int(method.active.sum())


# -- whole runs ------------------------------------------------------------------------------------

def flop_counter_macs(space: spaces.Space, genotype: Genotype) -> float:
    net = space.network(genotype).eval()
    s = space.shape
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, s.in_channels, s.image_size, s.image_size))
    return counter.get_total_flops() / 2


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path]:
    """One uninterrupted FAST search, shared by the series and the resume tests."""
    threads = torch.get_num_threads()
    cfg = resolve_config({**TINY, **FAST, "out": str(tmp_path_factory.mktemp("gold"))})
    run_dir = run_search(cfg, progress=False, log=lambda _: None)
    torch.set_num_threads(threads)
    return cfg, run_dir


def test_series_costs_fall_strictly_match_the_counter_and_the_floor_stops(
        fast_run: tuple[RunConfig, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg, run_dir = fast_run
    run = RunFolder(run_dir)
    summary = run.summary().to_dict()
    series = run.series()
    metrics = run.metrics()
    events = run.events()
    space = prepare(cfg).space
    floor = metrics[-1]["flops_floor"]
    # The floor ends the search: the last epoch is the first one below it.
    assert summary["epochs_run"] < cfg.epochs
    assert metrics[-1]["supernet_macs"] < floor
    assert all(row["supernet_macs"] >= floor for row in metrics[:-1])
    assert len(series) >= 2 and series[-1]["reason"] == "floor"
    macs = [p["macs"] for p in series]
    assert all(a > b for a, b in itertools.pairwise(macs))
    for point in series:
        genotype = Genotype.from_dict(point["genotype"])
        assert point["macs"] == pytest.approx(flop_counter_macs(space, genotype), rel=1e-9)
        assert point["params"] == space.genotype_cost(genotype).params
        assert 0.0 <= point["acc"] <= 1.0
    assert [p["index"] for p in summary["series"]] == [p["index"] for p in series]
    prunes = [e for e in events if e["kind"] == "prune"]
    assert prunes and all(e["ops"] and "lambda" in e for e in prunes)
    assert [e["index"] for e in events if e["kind"] == "record"][-1] == series[-1]["index"]
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "recorded architectures" in out and "floor" in out
    # the stop line: the epochs that ran against the cap, and GOLD-NAS's own reason
    stop = next(line for line in out.splitlines() if line.startswith("epochs run"))
    assert stop.startswith(f"epochs run {len(metrics)} / {cfg.epochs}: ")
    assert "GOLD-NAS reached its FLOPs floor" in stop


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in rows]


def test_resume_mid_search_ends_identical(fast_run: tuple[RunConfig, Path],
                                          tmp_path: Path) -> None:
    _, full = fast_run
    a = RunFolder(full).load_checkpoint()[0]
    cfg = resolve_config({**TINY, **FAST, "out": str(tmp_path)})
    # Interrupted before the last epoch; on the reference machine that is after a stable
    # epoch, so the resumed epoch records a point only if the stable counter came back.
    part = run_search(cfg, progress=False, stop_after=a["epoch"] - 1, log=lambda _: None)
    assert not RunFolder(part).finished()
    mid = RunFolder(part).load_checkpoint()[0]["method"]
    assert mid["lambda"] > 0 and mid["pruned_total"] > 0 and not mid["done"]
    saved = run_config(RunFolder(part))
    run_search(saved, resume_dir=part, progress=False, log=lambda _: None)
    b = RunFolder(part).load_checkpoint()[0]
    assert a["epoch"] == b["epoch"] > 2
    ma, mb = a["method"], b["method"]
    torch.testing.assert_close(ma["alpha"], mb["alpha"], rtol=0, atol=0)
    assert torch.equal(ma["active"], mb["active"])
    for key in ("lambda", "d", "stable", "pruned_total", "done", "points"):
        assert ma[key] == mb[key], key
    assert torch.equal(ma["generator"], mb["generator"])
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    whole, resumed = RunFolder(full), RunFolder(part)
    assert _comparable(whole.metrics()) == _comparable(resumed.metrics())
    assert _comparable(whole.events()) == _comparable(resumed.events())
    assert whole.series() == resumed.series()
    assert math.isfinite(resumed.summary().search_time_s)


def test_gold_runs_on_the_restricted_space(tiny_config) -> None:
    cfg = tiny_config(method="gold", space="restricted", max_train_images=32, batch_size=32,
                      **{"hp.record_final": False})
    run_dir = run_search(cfg, progress=False, log=lambda _: None)
    genotype = RunFolder(run_dir).genotype()
    assert genotype.space == "restricted" and "none" not in genotype.ops()


# -- configuration ---------------------------------------------------------------------------------

def test_defaults_are_the_public_implementation_and_presets_resolve() -> None:
    cfg = GoldConfig()
    assert (cfg.w_lr, cfg.w_momentum, cfg.w_weight_decay, cfg.grad_clip) == (0.01, 0.9, 3e-4, 5)
    assert (cfg.a_lr, cfg.a_momentum, cfg.a_weight_decay) == (1.0, 0.9, 0.0)
    assert (cfg.eta_min, cfg.eta_max, cfg.n0, cfg.stable_epochs) == (0.01, 0.05, 4, 3)
    assert (cfg.lambda0, cfg.d0, cfg.mu, cfg.auxiliary_weight) == (0.0, 1e-5, 0.0, 0.4)
    assert cfg.min_flops == 240e6
    mini = resolve_config({"method": "gold", "space": "relaxed"})
    assert mini.hp.min_flops_fraction is not None and mini.epochs >= 20
    paper = resolve_config({"method": "gold", "space": "relaxed", "preset": "paper"})
    assert (paper.layers, paper.channels, paper.batch_size, paper.cutout) == (14, 16, 96, 16)
    with pytest.raises(ValueError):
        GoldConfig(eta_min=0.1, eta_max=0.05)
    with pytest.raises(ValueError, match="floor"):
        make_gold(min_flops=240e6)  # the paper's absolute floor exceeds the tiny supernet


def test_search_ends_when_every_node_is_down_to_its_last_input() -> None:
    # Every w_hat is below eta_min, and the floor is below the smallest reachable network.
    method = make_gold(eta_min=0.6, eta_max=0.9, min_flops_fraction=0.01)
    for epoch in range(30):
        events = method.end_epoch(epoch)
        if method.finished():
            break
    assert method.finished() and not method.prunable()
    assert method.macs >= method.floor  # the floor was not what stopped it
    assert events[-1]["kind"] == "record" and events[-1]["reason"] == "minimal"
    per_node = {}
    for g, e, _ in method.active.nonzero().tolist():
        key = (g, int(method.node_of_edge[e]))
        per_node[key] = per_node.get(key, 0) + 1
    assert set(per_node.values()) == {1}


def test_the_progress_bar_ends_at_the_steps_that_ran(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A search that stops at its floor closes its bar full (at the steps done), not at a
    share of the epoch cap with an ETA for epochs that never come."""
    from tqdm.auto import tqdm

    import nasbench_suite.training.loop as loop

    bars: list[tqdm] = []

    class Recorded(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # counting (a disabled bar counts nothing), drawn into a string, not the terminal
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(loop, "tqdm", Recorded)
    cfg = resolve_config({**TINY, **FAST, "out": str(tmp_path)})
    run_dir = run_search(cfg, progress=False, log=lambda _: None)
    (bar,) = bars
    epochs = RunFolder(run_dir).summary().epochs_run
    assert epochs < cfg.epochs  # the floor stopped it
    assert bar.n > 0 and bar.total == bar.n
    assert bar.n % epochs == 0  # whole epochs of steps, not the cap's
