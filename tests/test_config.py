"""One resolved config: what a run leaves open is decided once and saved as it ran; a
method's Config is built once; old folders (``auto`` saved) still load and resume; a training
from scratch shares a search's config blocks."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
import yaml
from nasbench_suite.methods.darts import DartsConfig
from nasbench_suite.methods.training import WeightSGD
from nasbench_suite.spaces import NetShape, create_space

from nasbench_suite.cli.main import main
from nasbench_suite.config import (
    ComputeConfig,
    DataConfig,
    Decisions,
    RunConfig,
    requested_config,
    resolve_config,
    resume_values,
    run_config,
    saved_config,
)
from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.sweep.spec import expand, spec_from_dict
from nasbench_suite.sweep.tune import check_existing
from nasbench_suite.training.loop import run_search
from nasbench_suite.training.scratch import EvalConfig, resolve_eval_config, train_from_scratch
from tests.conftest import TINY

#: the settings a user may leave open (``auto``, null) and a run decides
DECIDED = ("device", "threads", "skip", "augment", "ops", "image_size")

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"


def _quiet(cfg: RunConfig, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    return run_search(cfg, progress=False, log=lambda _: None, **kwargs)


def test_a_fresh_run_saves_the_decided_config_and_what_was_asked(tiny_config) -> None:
    cfg = tiny_config(threads=None, space="relaxed", method="gold")
    assert (cfg.device, cfg.skip, cfg.augment, cfg.ops, cfg.image_size) == (
        "auto", "auto", "auto", None, None)
    saved = yaml.safe_load((_quiet(cfg) / "config.yaml").read_text())
    for name in DECIDED:
        assert saved[name] not in ("auto", None), name
    assert "auto" not in [v for k, v in saved.items() if k != "requested"]
    assert saved["device"] in ("cpu", "cuda") and saved["threads"] >= 1
    assert saved["skip"] == "bn" and saved["augment"] == "none"  # relaxed space, digits
    assert saved["ops"] == ["skip_connect", "sep_conv_3x3"] and saved["image_size"] == 8
    assert saved["requested"] == {"device": "auto", "threads": None, "skip": "auto",
                                  "augment": "auto", "ops": None, "image_size": None}
    # a value the user set is not a decision
    explicit = yaml.safe_load((_quiet(tiny_config(skip="identity", device="cpu"))
                               / "config.yaml").read_text())
    assert explicit["skip"] == "identity" and "skip" not in explicit["requested"]
    assert "device" not in explicit["requested"]


def test_the_method_config_is_built_once_per_run(tiny_config,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[DartsConfig] = []
    original = DartsConfig.__post_init__

    def count(self: DartsConfig) -> None:
        built.append(self)
        original(self)

    monkeypatch.setattr(DartsConfig, "__post_init__", count)
    cfg = tiny_config(method="darts", hp={"order": 1})
    run_dir = _quiet(cfg)
    assert len(built) == 1 and cfg.hp is built[0]
    assert RunFolder(run_dir).config_dict()["hp"]["order"] == 1


def _old_style(folder: RunFolder) -> None:
    """Rewrite a folder's config.yaml as the code before decisions wrote it."""
    config = folder.config_dict()
    config.pop("requested")
    config.update(device="auto", skip="auto", augment="auto", ops=None, image_size=None)
    (folder.path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_an_old_config_with_auto_values_loads_and_resumes_as_it_ran(
        tiny_config, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(epochs=2)
    whole = RunFolder(_quiet(cfg))
    part = RunFolder(_quiet(cfg, stop_after=1))
    _old_style(part)
    assert run_config(part).device == "auto"
    assert main(["run", "--resume", str(part.path), "--quiet"]) == 0
    capsys.readouterr()
    assert part.finished()
    assert part.arch() == whole.arch() and part.genotype() == whole.genotype()
    assert part.config_dict()["device"] == "auto"  # a resume does not rewrite the config


def test_committed_reference_configs_still_load() -> None:
    """Folders written before decisions were saved hold ``auto``: they load as they are."""
    configs = sorted(REFERENCE.glob("*/*/config.yaml"))
    assert configs
    for path in configs:
        folder = RunFolder(path.parent)
        saved, cfg = saved_config(folder), run_config(folder)  # retired hp names dropped
        assert (cfg.device, cfg.skip, cfg.augment, cfg.ops) == (
            saved["device"], saved["skip"], saved["augment"], saved["ops"])
        hp = json.loads(json.dumps(cfg.hp.to_dict()))  # tuples as the YAML's lists
        assert {k: hp[k] for k in saved["hp"] or {}} == (saved["hp"] or {})


def test_a_resume_decides_the_machine_afresh_and_keeps_the_rest() -> None:
    saved = {"device": "cuda", "threads": 16, "skip": "bn", "augment": "none",
             "requested": {"device": "auto", "threads": None, "skip": "auto",
                           "augment": "auto"}}
    assert resume_values(saved) == {"device": "auto", "threads": None, "skip": "bn",
                                    "augment": "none"}
    assert requested_config(saved) == {"device": "auto", "threads": None, "skip": "auto",
                                       "augment": "auto"}
    old = {"device": "auto", "skip": "auto"}  # written before decisions were saved
    assert resume_values(old) == requested_config(old) == old


def test_a_resume_accepts_the_asked_value_and_refuses_another(tiny_config) -> None:
    part = RunFolder(_quiet(tiny_config(epochs=2), stop_after=1))
    assert part.config_dict()["skip"] == "identity"  # restricted space: DARTS's identity
    assert main(["run", "--resume", str(part.path), "--quiet", "--set", "skip=bn"]) == 2
    assert main(["run", "--resume", str(part.path), "--quiet", "--set", "skip=auto"]) == 0
    assert part.finished()


def test_an_eval_config_is_made_of_the_run_config_blocks() -> None:
    for block in (DataConfig, ComputeConfig, Decisions):
        assert issubclass(RunConfig, block) and issubclass(EvalConfig, block)
    assert issubclass(EvalConfig, WeightSGD)
    names = {f.name for f in fields(EvalConfig)}
    assert {f.name for f in fields(WeightSGD)} <= names
    assert not names & {"lr", "lr_min", "momentum", "weight_decay"}
    run_names = {f.name for f in fields(RunConfig)}
    shared = {f.name for b in (DataConfig, ComputeConfig, Decisions) for f in fields(b)}
    assert shared <= names & run_names
    # the optimiser's former names still read, as the block's
    cfg = resolve_eval_config({"lr": 0.05, "lr_min": 0.001, "momentum": 0.8})
    assert (cfg.w_lr, cfg.w_lr_min, cfg.w_momentum) == (0.05, 0.001, 0.8)
    assert resolve_eval_config({}).w_lr_min == 0.0  # DARTS's evaluation anneals to 0
    assert resolve_eval_config({"preset": "paper"}).w_lr == 0.025


def test_a_training_from_scratch_saves_its_decided_config(tmp_path: Path) -> None:
    space = create_space("restricted", NetShape(4, 3, 1, 10, 8))
    genotype = space.derive(torch.rand(space.layout.shape))
    cfg = resolve_eval_config({"epochs": 1, "channels": 4, "batch_size": 128,
                               "out": str(tmp_path), "restricted_layers": 3})
    out = train_from_scratch(cfg, "g", genotype, progress=False, log=lambda _: None)
    saved = json.loads((out / "eval_config.json").read_text())
    for name in ("device", "threads", "augment", "image_size"):
        assert saved[name] not in ("auto", None), name
    assert saved["requested"]["augment"] == "auto"


def test_a_sweep_recognises_its_trial_by_what_was_asked(tmp_path: Path) -> None:
    """A trial's config is as asked (``auto``); its folder saves the decided one: a sweep
    that runs again finds the same run there, and a changed setting is still refused."""
    spec = spec_from_dict({"methods": ["darts"], "spaces": ["relaxed"], "seeds": [0],
                           "set": dict(TINY)}, "test")
    (trial,) = expand(spec, tmp_path, log=lambda _: None)
    assert trial.config["skip"] == "auto" and trial.config["ops"] is None
    _quiet(resolve_config(trial.config), run_dir=trial.run_dir)
    assert RunFolder(trial.run_dir).config_dict()["skip"] == "bn"
    check_existing(trial)
    changed = dataclasses.replace(trial, config={**trial.config, "skip": "identity"})
    with pytest.raises(UsageError, match="different config"):
        check_existing(changed)
