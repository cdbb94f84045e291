"""EDAS: one relaxed edge per step, every other edge clamped to a single op."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from nasbench_suite.methods import SearchContext
from nasbench_suite.methods.edas import Edas, EdasConfig
from nasbench_suite.spaces import NetShape, create_space

from nasbench_suite.errors import UsageError
from tests._helpers import count_calls

TINY_SHAPE = NetShape(channels=4, layers=3, in_channels=1, num_classes=10, image_size=8)
SPACES = ["restricted", "relaxed"]


#: tiny networks are overhead-bound: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def make(space_name: str, seed: int = 0, steps: int = 4, **hp: Any) -> Edas:
    """An EDAS adapter relaxing one edge per step (the abstract's rule) unless ``hp`` says
    otherwise (None: as many as cover every edge each epoch)."""
    torch.manual_seed(seed)
    space = create_space(space_name, TINY_SHAPE)
    ctx = SearchContext(device=torch.device("cpu"), epochs=2, steps_per_epoch=steps, seed=seed)
    return Edas(space, space.supernet(), EdasConfig(**{"edges_per_step": 1, **hp}), ctx)


def batches(n: int, seed: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen))
            for _ in range(n)]


def one_op_per_edge(method: Edas) -> None:
    """Alphas whose clamp keeps exactly one non-zero op on every edge (no fallbacks)."""
    O = method.layout.shape[-1]
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for i, p in enumerate(method.alphas):
            values = -0.5 - torch.rand(O, generator=gen)
            values[method.space.nonzero_ops[i % len(method.space.nonzero_ops)]] = 0.5
            p.copy_(values)


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("optimisation", ["bilevel", "one_level"])
def test_a_step_changes_only_the_sampled_edges_alphas(space_name: str,
                                                      optimisation: str) -> None:
    method = make(space_name, optimisation=optimisation)
    for batch, val in zip(batches(3), batches(3, seed=6), strict=True):
        before = method.alpha.clone()
        method.step(batch, val)
        (g, e), = method.last_edges
        changed = (method.alpha != before).any(-1)
        assert changed[g, e], "the sampled edge's alphas must move"
        changed[g, e] = False
        assert not changed.any(), f"alphas of unsampled edges moved: {changed.nonzero().tolist()}"


@pytest.mark.parametrize("space_name", SPACES)
def test_only_the_clamped_op_runs_on_every_other_edge(space_name: str) -> None:
    method = make(space_name)
    one_op_per_edge(method)
    _, keep = method.clamped()
    assert (keep.sum(-1) == 1).all()
    calls = count_calls(method.supernet)
    batch, val = batches(1)[0], batches(1, seed=6)[0]
    method.step(batch, val)  # one alpha forward and one weight forward
    (g_s, e_s), = method.last_edges
    layout = method.layout
    for i, g in enumerate(layout.cell_groups):
        for e in range(len(layout.edges)):
            ran = {name for (c, edge, name), n in calls.items() if c == i and edge == e and n}
            if (g, e) == (g_s, e_s):
                assert len(ran) == len(method.space.nonzero_ops)  # the relaxed edge: all ops
                continue
            op = method.space.ops[int(keep[g, e].nonzero())]
            assert ran == {op}, f"cell {i} edge {e}: {ran}"
            assert calls[(i, e, op)] == 2


def test_uniform_sampling_visits_every_edge() -> None:
    method = make("restricted")
    G, E, _ = method.layout.shape
    seen = {pair for _ in range(1000) for pair in method.sample_edges()}
    assert seen == {(g, e) for g in range(G) for e in range(E)}


@pytest.mark.parametrize("k", [1, 3])
def test_round_robin_visits_every_edge_once_per_pass(k: int) -> None:
    method = make("relaxed", edge_sampling="round_robin", edges_per_step=k)
    G, E, _ = method.layout.shape
    n = G * E
    drawn = [pair for _ in range(n // k) for pair in method.sample_edges()]
    assert len(set(drawn)) == len(drawn) == n - n % k
    for _ in range(3):
        step = method.sample_edges()
        assert len(set(step)) == k


def test_steps_count_visits_and_log_them() -> None:
    method = make("restricted")
    for batch, val in zip(batches(4), batches(4, seed=6), strict=True):
        method.step(batch, val)
    events = method.end_epoch(0)
    visits = next(e for e in events if e["kind"] == "edge_visits")
    assert visits["edge_visits"] == 4
    assert sum(map(sum, visits["visits"].values())) == 4
    assert int(method.visits.sum()) == 0  # counters restart every epoch


@pytest.mark.parametrize("space_name", SPACES)
def test_a_node_whose_clamped_ops_are_all_off_keeps_its_strongest_op(space_name: str) -> None:
    method = make(space_name)
    with torch.no_grad():
        for p in method.alphas:
            p.fill_(-1.0)
            if space_name == "restricted":
                p[0] = 1.0  # argmax 'none' on every edge
        strong = method.space.nonzero_ops[-1]
        method.alphas[3][strong] = 0.5  # the strongest non-zero op into node 3 of group 0
    weights, keep = method.clamped()
    layout = method.layout
    for g in range(len(layout.groups)):
        for node in range(2, 2 + layout.nodes):
            assert keep[g, layout.node_edges(node)].sum() == 1
    assert keep[0, 3, strong]
    logits, _ = method.supernet(torch.randn(2, 1, 8, 8), weights, keep)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("space_name,clamp", [("relaxed", "argmax"),
                                              ("restricted", "derived")])
def test_clamped_supernet_is_the_derived_network(space_name: str, clamp: str) -> None:
    method = make(space_name, clamp=clamp)
    _, keep = method.clamped()
    assert torch.equal(keep, method.space.mask_of(method.genotype()))


def test_explore_regulariser_keeps_one_op_per_clamped_edge() -> None:
    method = make("restricted", explore_eps=1.0)
    edges = [(0, 5)]
    weights, active = method.step_mixing(edges, grad=False, explore=True)
    counts = active.sum(-1)
    counts[0, 5] = 1
    assert (counts == 1).all()
    assert torch.equal(weights[1], active[1].float())


def test_resume_continues_identically() -> None:
    data = list(zip(batches(4), batches(4, seed=6), strict=True))
    a = make("restricted", edge_sampling="round_robin")
    for batch, val in data[:2]:
        a.step(batch, val)
    state = copy.deepcopy(a.state_dict())
    weights = copy.deepcopy(a.supernet.state_dict())
    b = make("restricted", seed=0, edge_sampling="round_robin")
    b.supernet.load_state_dict(weights)
    b.load_state_dict(state)
    for batch, val in data[2:]:
        a.step(batch, val)
        b.step(batch, val)
        assert a.last_edges == b.last_edges
    assert torch.equal(a.alpha, b.alpha)
    for (k, v), w in zip(a.supernet.state_dict().items(), b.supernet.state_dict().values(),
                         strict=True):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("hp", [{"edge_sampling": "random"}, {"clamp": "soft"},
                                {"optimisation": "two_level"}, {"edges_per_step": 0},
                                {"explore_eps": 2.0}, {"temperature": 0.0}])
def test_bad_options_are_refused(hp: dict[str, Any]) -> None:
    from nasbench_suite.config import build_dataclass

    with pytest.raises(UsageError):
        build_dataclass(EdasConfig, hp, "edas hyper-parameter")


# -- EDAS learns (the must-show) -------------------------------------------------------
@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A few EDAS epochs on digits with the mini preset's alpha budget (DARTS's)."""
    from nasbench_suite.config import resolve_config
    from nasbench_suite.store.runfolder import RunFolder
    from nasbench_suite.training.loop import run_search
    from tests.conftest import TINY

    cfg = resolve_config({**TINY, "method": "edas", "space": "restricted", "epochs": 3,
                          "out": str(tmp_path_factory.mktemp("edas"))})
    assert cfg.hp.alpha_budget_steps == 19550  # the mini preset's: DARTS's budget
    return RunFolder(run_search(cfg, progress=False, log=lambda _: None))


def test_every_edges_alphas_move_more_than_their_initial_spread(learned: Any) -> None:
    moves = [e for e in learned.events() if e["kind"] == "edge_moves"]
    visits = [e for e in learned.events() if e["kind"] == "edge_visits"]
    assert len(moves) == 3 and all(v["unvisited"] == 0 for v in visits)  # every edge, every epoch
    last = moves[-1]
    smallest = min(min(row) for row in last["max_move"].values())
    assert smallest > last["init_spread"] > 0, (smallest, last["init_spread"])


def test_the_derived_genotype_left_the_initial_argmax_in_every_cell_type(learned: Any) -> None:
    initial = learned.arch()[0]  # epoch -1: the genotype of the initial alphas
    assert initial.epoch == -1
    final = learned.genotype().to_dict()
    for group, cell in final["groups"].items():
        before = {tuple(e) for e in initial.genotype["groups"][group]["edges"]}
        after = {tuple(e) for e in cell["edges"]}
        assert after != before, f"{group}: the derived cell is the initial argmax's"


def test_the_gap_is_measured_on_the_searching_supernet() -> None:
    """With clamp=derived the fully clamped supernet *is* the derived network (gap 0 by
    construction); the reported supernet relaxes the next step's edges, so it differs."""
    method = make("restricted", clamp="derived", edges_per_step=None)
    weights, active = method.mixing()
    clamped, clamped_active = method.clamped()
    assert torch.equal(clamped_active, method.space.mask_of(method.genotype()))
    relaxed = method.peek_edges()
    assert relaxed and not torch.equal(weights, clamped)
    for g, e in relaxed:  # a relaxed edge mixes every op with a softmax weight
        assert active[g, e].all() and 0 < float(weights[g, e].max()) < 1


def test_a_run_reports_a_nonzero_gap_where_derived_clamping_has_none(tiny_config) -> None:
    from nasbench_suite.store.runfolder import RunFolder
    from nasbench_suite.training.loop import run_search

    run = RunFolder(run_search(tiny_config(method="edas", space="restricted", epochs=2,
                                           hp={"clamp": "derived"}),
                               progress=False, log=lambda _: None))
    inh = run.summary().inherited
    assert inh.supernet_acc is not None and inh.derived_acc is not None
    assert inh.gap == pytest.approx(inh.supernet_acc - inh.derived_acc)
    assert inh.gap != 0.0
