"""darts-failure's arms (issue 27): options recorded and effective, the arms' sweeps, GOLD-NAS's
gate saturation, collapse timing, and the protocol control's verdict. Fast: no search runs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from nasbench_suite.methods import get_method
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.spaces import DARTS_V2, NetShape, create_space
from nasbench_suite.spaces.ops import DARTS_OPS, GOLD_OPS, SkipBN, chance_parameter_free_share
from torch import nn

from nasbench_suite.config import resolve_config
from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import expand_all
from nasbench_suite.experiments.darts_failure.config import (
    ALL_ARMS,
    ARMS_BY_LABEL,
    S2_OPS,
    ReproduceConfig,
    arm_of,
)
from nasbench_suite.experiments.darts_failure.control import (
    ALL_SKIP,
    DARTS_V2_LABEL,
    NOT_MEASURED,
    NOT_SEPARATED,
    SEPARATED,
    control_genotypes,
    control_markdown,
    control_verdicts,
    random_genotype,
    separation,
)
from nasbench_suite.experiments.darts_failure.experiment import (
    control_trainings,
    sweep_spec,
    sweep_specs,
)
from nasbench_suite.experiments.darts_failure.report import (
    EARLY,
    LATE,
    NONE,
    collapse_timing,
    fit_epoch,
    gate_saturation,
)
from tests.conftest import TINY

SEARCH = {k: v for k, v in TINY.items() if k != "epochs"}
SHAPE = NetShape(channels=4, layers=3, in_channels=3, num_classes=10, image_size=8)


def _cfg(tmp_path: Path, **kw) -> ReproduceConfig:
    cfg = ReproduceConfig(out=str(tmp_path), seeds=[0, 1, 2], search_set=dict(SEARCH), **kw)
    cfg.validate()
    return cfg


# -- the options: recorded, and they change what is built ------------------------------------
def _skip_modules(net: nn.Module) -> tuple[int, int]:
    """(SkipBN modules, identity modules) in a network."""
    return (sum(isinstance(m, SkipBN) for m in net.modules()),
            sum(isinstance(m, nn.Identity) for m in net.modules()))


def test_skip_option_is_recorded_and_builds_bn_or_identity() -> None:
    relaxed = resolve_config({"method": "darts", "space": "relaxed", **TINY})
    identity = resolve_config({"method": "darts", "space": "relaxed", "skip": "identity",
                               **TINY})
    assert relaxed.space_decisions()["skip"] == "bn"  # the relaxed space's own
    assert identity.to_dict()["skip"] == "identity"
    bn_net = create_space("relaxed", SHAPE, skip="bn").supernet()
    id_net = create_space("relaxed", SHAPE, skip="identity").supernet()
    assert _skip_modules(bn_net)[0] > 0
    assert _skip_modules(id_net)[0] == 0 and _skip_modules(id_net)[1] > 0


def test_s2_arm_searches_exactly_skip_and_sep_conv_3x3() -> None:
    cfg = resolve_config({"method": "darts", "space": "restricted", "ops": list(S2_OPS),
                          **TINY})
    assert cfg.to_dict()["ops"] == ["skip_connect", "sep_conv_3x3"]
    space = create_space("restricted", SHAPE, tuple(cfg.ops))
    assert space.ops == S2_OPS and not space.capabilities.zero_op
    assert space.layout.shape[-1] == 2
    genotype = space.derive(torch.randn(space.layout.shape))
    assert set(genotype.ops()) <= set(S2_OPS)


def _alpha_lr(**hp) -> float:
    cfg = resolve_config({"method": "darts", "space": "restricted", **TINY,
                          **{f"hp.{k}": v for k, v in hp.items()}})
    space = create_space("restricted", SHAPE)
    method = get_method("darts")(space, space.supernet(), cfg.hp,
                                 SearchContext(device=torch.device("cpu"), epochs=10,
                                               steps_per_epoch=11, seed=0))
    return float(method.a_opt.param_groups[0]["lr"])


def test_alpha_budget_none_keeps_the_papers_adam_lr() -> None:
    assert _alpha_lr(alpha_budget_steps=None) == pytest.approx(3e-4)
    # the mini preset's rescaling: 19,550 / (10 epochs x 11 steps)
    assert _alpha_lr() == pytest.approx(3e-4 * 19550 / 110)


# -- the arms -----------------------------------------------------------------------------------
def test_every_arm_of_the_issue_is_known() -> None:
    assert set(ALL_ARMS) == {"darts-restricted", "darts-restricted-s2",
                             "darts-restricted-paperlr", "darts-relaxed",
                             "darts-relaxed-identity", "darts-relaxed-paperlr",
                             "darts2-relaxed", "gold-relaxed"}


def test_all_arms_expand_to_distinct_trials_at_one_budget(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, arms="all", epochs=3)
    trials = expand_all(sweep_specs(cfg), tmp_path, log=lambda _: None)
    assert len(trials) == 3 * len(ALL_ARMS)
    assert len({t.trial_id for t in trials}) == len(trials)
    assert {(t.config["dataset"], t.config["epochs"], t.config["max_train_images"])
            for t in trials} == {("digits", 3, TINY["max_train_images"])}
    by_arm: dict[str, list] = {}
    for t in trials:
        arm = arm_of(t.config["method"], t.config["space"], t.config)
        by_arm.setdefault(arm.label, []).append(t)
    assert {k: len(v) for k, v in by_arm.items()} == {a: 3 for a in ALL_ARMS}
    assert {t.config["skip"] for t in by_arm["darts-relaxed-identity"]} == {"identity"}
    assert {t.config["hp"]["alpha_budget_steps"] for t in by_arm["darts-relaxed-paperlr"]} \
        == {None}
    assert {t.config["hp"]["alpha_budget_steps"] for t in by_arm["darts-relaxed"]} == {19550}
    assert {t.config["hp"]["order"] for t in by_arm["darts2-relaxed"]} == {2}
    assert {tuple(t.config["ops"]) for t in by_arm["darts-restricted-s2"]} == {S2_OPS}


def test_default_arms_keep_the_committed_sweep(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert len(sweep_specs(cfg)) == 1
    ids = sorted(t.trial_id for t in expand_all(sweep_specs(cfg), tmp_path, lambda _: None))
    assert ids == sorted(f"{m}-{s}-digits-s{i}" for m, s in
                         [("darts", "restricted"), ("darts", "relaxed"), ("gold", "relaxed")]
                         for i in range(3))
    assert sweep_spec(cfg).grid == {}


@pytest.mark.parametrize("arms, match", [("darts-nowhere", "unknown arm"),
                                         ("gold-relaxed,gold-relaxed", "twice")])
def test_bad_arms_are_refused(arms: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=match):
        _cfg(tmp_path, arms=arms)


def test_arm_of_reads_a_saved_config() -> None:
    assert arm_of("darts", "relaxed", {"skip": "identity", "hp": {"order": 1}}).label == \
        "darts-relaxed-identity"
    assert arm_of("darts", "relaxed", {"skip": "bn", "hp": {"order": 1,
                                                            "alpha_budget_steps": 19550}}
                  ).label == "darts-relaxed"
    assert arm_of("gold", "relaxed", {}).label == "gold-relaxed"
    assert ARMS_BY_LABEL["darts2-relaxed"].overrides == (("hp.order", 2),)


# -- instruments --------------------------------------------------------------------------------
def test_gate_saturation_counts_surviving_gates_only() -> None:
    weights = torch.tensor([[0.99, 0.0], [0.97, 0.5], [0.2, 0.999]])
    active = torch.tensor([[True, False], [True, True], [False, True]])
    median, share = gate_saturation(weights.tolist(), active.tolist())
    assert median == pytest.approx(0.98)  # of 0.99, 0.97, 0.5, 0.999
    assert share == pytest.approx(0.75)
    assert all(math.isnan(v) for v in gate_saturation([[0.0]], [[False]]))


def test_fit_epoch_and_collapse_timing() -> None:
    metrics = [{"epoch": e, "train_acc": a} for e, a in enumerate([0.3, 0.6, 0.86, 0.9])]
    assert fit_epoch(metrics, 0.85) == 3.0
    assert math.isnan(fit_epoch(metrics, 0.95))
    assert collapse_timing(2.0, 3.0) == EARLY
    assert collapse_timing(3.0, 3.0) == LATE
    assert collapse_timing(2.0, math.nan) == EARLY
    assert collapse_timing(math.nan, 3.0) == NONE


# -- the protocol control -----------------------------------------------------------------------
def test_separation_needs_the_seeds_ranges_apart() -> None:
    assert separation([0.30, 0.32, 0.35], [0.45, 0.47, 0.50]) == SEPARATED
    assert separation([0.30, 0.32, 0.46], [0.45, 0.47, 0.50]) == NOT_SEPARATED
    assert separation([0.50, 0.52, 0.51], [0.45, 0.47, 0.50]) == NOT_SEPARATED
    assert separation([0.30], [0.45, 0.47]) == NOT_MEASURED


def test_control_report_decides_per_space() -> None:
    rows = [("restricted", DARTS_V2_LABEL, s, a) for s, a in enumerate([0.48, 0.49, 0.50])]
    rows += [("restricted", ALL_SKIP, s, a) for s, a in enumerate([0.30, 0.31, 0.33])]
    rows += [("relaxed", ALL_SKIP, s, a) for s, a in enumerate([0.47, 0.49, 0.52])]
    rows += [("relaxed", "random0", s, a) for s, a in enumerate([0.40, 0.41, 0.42])]
    frame = pd.DataFrame([{"space": sp, "cell": c, "seed": s, "test_acc": a, "mmacs": 1.0,
                           "train_time_s": 1.0} for sp, c, s, a in rows])
    assert control_verdicts(frame) == {"restricted": SEPARATED, "relaxed": NOT_SEPARATED}
    text = control_markdown(frame)
    assert "restricted: all-skip vs DARTS V2: **separated**" in text
    assert "relaxed: all-skip vs DARTS V2: **not separated**" in text


def test_control_cells_are_what_they_say() -> None:
    restricted = dict(control_genotypes("restricted", 5, 5))
    relaxed = dict(control_genotypes("relaxed", 5, 5))
    assert len(restricted) == 2 + 5 and len(relaxed) == 1 + 5
    assert set(restricted[ALL_SKIP].ops()) == {"skip_connect"}
    assert all(len(c.edges) == 8 for c in restricted[ALL_SKIP].groups.values())
    assert restricted[DARTS_V2_LABEL] == DARTS_V2
    assert set(relaxed[ALL_SKIP].ops()) == {"skip_connect"}
    assert all(len(c.edges) == 14 for c in relaxed[ALL_SKIP].groups.values())
    randoms = [g for label, g in restricted.items() if label.startswith("random")]
    assert len({g.to_json() for g in randoms}) == 5  # distinct cells, fixed by their index
    assert dict(control_genotypes("restricted", 5, 5))["random3"] == restricted["random3"]
    space = create_space("relaxed", NetShape(8, 5, 3, 10, 32))
    for label, genotype in relaxed.items():
        space.check_genotype(genotype)  # every node fed
        assert len(genotype.cell_groups) == 5, label


@pytest.mark.parametrize(("space_name", "ops", "expected"), [
    ("restricted", DARTS_OPS, 3 / 7), ("restricted", S2_OPS, 1 / 2), ("relaxed", GOLD_OPS, 1 / 2),
])
def test_the_chance_share_is_what_the_controls_random_cells_average(space_name, ops,
                                                                     expected) -> None:
    """The chance level beside each arm's share is exact (spaces.ops docstring): the mean
    normal-cell parameter-free share of the control's uniform random cells lands on it."""
    assert chance_parameter_free_share(ops) == pytest.approx(expected)
    space = create_space(space_name, NetShape(8, 5, 3, 10, 32), ops)
    shares = [random_genotype(space, torch.Generator().manual_seed(i))
              .parameter_free_share(reduction=False) for i in range(200)]
    # 200 draws: the mean's standard error is under 0.013 in either space
    assert sum(shares) / len(shares) == pytest.approx(expected, abs=0.04)


def test_control_trains_every_cell_over_the_seeds(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, control_cells=5)
    plan = control_trainings(cfg)
    assert len(plan) == (2 + 5 + 1 + 5) * 3
    assert len({folder for *_, folder in plan}) == len(plan)


def test_a_bad_arm_on_the_command_line_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasbench_suite.cli.main import main

    out = tmp_path / "out"
    code = main(["reproduce", "darts-failure", "--arms", "darts-relaxed,bogus", "--out",
                 str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown arm 'bogus'" in err[0]
    assert not any(out.rglob("*")) if out.exists() else True


def test_every_arm_override_is_a_scalar_tune_can_take() -> None:
    """Ray Tune reads a list or tuple grid value as a nested search space and fails
    (sweep/tune.py passes the axes to Tune): every arm override must be a scalar."""
    for arm in ARMS_BY_LABEL.values():
        for _, value in arm.overrides:
            assert value is None or isinstance(value, (str, int, float, bool)), arm.label
    cfg = resolve_config({"method": "darts", "space": "restricted", "ops": "skip_connect,"
                          "sep_conv_3x3", **TINY})
    assert cfg.ops == list(S2_OPS)


def test_the_scratch_figure_sets_every_arm_beside_the_controls_bands() -> None:
    from nasbench_suite.experiments.darts_failure.plots import plot_scratch_control

    trials = pd.DataFrame({"arm": ["DARTS (1st order), relaxed"] * 2 + ["GOLD-NAS, relaxed"],
                           "seed": [0, 1, 0], "scratch_acc": [0.48, 0.49, 0.47]})
    control = pd.DataFrame({"space": ["restricted"] * 4, "seed": [0, 1, 0, 1],
                            "cell": [ALL_SKIP, ALL_SKIP, DARTS_V2_LABEL, DARTS_V2_LABEL],
                            "test_acc": [0.40, 0.41, 0.50, 0.51]})
    assert plot_scratch_control(trials, control.iloc[:0]) is None  # no control, no figure
    fig = plot_scratch_control(trials, control)
    ax = fig.axes[0]
    legend = [t.get_text() for t in fig.legends[0].texts]
    assert legend == ["all-skip cells (control)", "DARTS V2 (control)"]  # no random cells
    low, high = ax.get_xlim()
    assert low < 40.0 and high > 51.0  # both bands and every arm in view
    assert [t.get_text() for t in ax.get_yticklabels()] == ["DARTS (1st order), relaxed",
                                                            "GOLD-NAS, relaxed"]
