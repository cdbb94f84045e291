"""Train a derived architecture from scratch: `nasbench evaluate`.

The DARTS evaluation recipe (SGD with cosine annealing, cutout, drop-path, auxiliary head).
The test split is read exactly once, after the last epoch: nothing in training can be chosen
by test accuracy. The genotype comes from a run folder (its final genotype, or one point of
its series with ``--index``) or from a genotype JSON file.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nasbench_suite.config import (
    ComputeConfig,
    DataConfig,
    Decisions,
    build_dataclass,
    check_positive,
    load_preset,
)
from nasbench_suite.data.augment import augment_for
from nasbench_suite.data.datasets import (
    check_dataset_spec,
    dataset_id,
    dataset_slug,
    load_dataset,
)
from nasbench_suite.errors import UsageError
from nasbench_suite.methods.training import (
    WeightSGD,
    clip_and_step,
    scheduled_lr,
    set_lr,
    weight_optimizer,
)
from nasbench_suite.spaces import COUNTER, Genotype, NetShape, create_space
from nasbench_suite.spaces.network import count_parameters
from nasbench_suite.store.evalfolder import EvalFolder, EvalResult
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.accuracy import evaluate
from nasbench_suite.training.loop import machine_decisions, seed_everything

#: the optimiser's names before it was the training kit's WeightSGD block, still read from
#: overrides (``--set lr=...``, experiments' ``eval_set``) and evaluation folders
LEGACY_NAMES = {"lr": "w_lr", "lr_min": "w_lr_min", "momentum": "w_momentum",
                "weight_decay": "w_weight_decay"}


@dataclass
class EvalConfig(DataConfig, ComputeConfig, WeightSGD, Decisions):
    """Training from scratch: the data, compute and decision blocks of a search
    (nasbench_suite.config) and the weights' optimiser every method uses (WeightSGD), one
    definition of each. ``layers`` None takes the space's evaluation depth:
    ``restricted_layers`` (20, as DARTS) for shared cell types, the searched depth for a
    genotype with one architecture per cell (the relaxed space)."""

    source: str = ""
    index: int | None = None
    preset: str = "mini"
    seed: int = 0
    epochs: int = 20
    channels: int = 16
    layers: int | None = None
    restricted_layers: int = 20
    #: DARTS's evaluation anneals to 0 (its search, WeightSGD's default, to 0.001)
    w_lr_min: float = 0.0
    auxiliary_weight: float = 0.4
    drop_path: float = 0.2
    out: str = "results/evals"

    def validate(self) -> None:
        self.check_data()
        self.check_compute()
        try:
            self.check_weights()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        check_positive(self, "epochs", "channels")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"seed must be in [0, 2^32), got {self.seed}")
        for name in ("w_momentum", "w_weight_decay", "auxiliary_weight"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.layers is not None and self.layers < 3:
            raise UsageError(f"layers must be at least 3, got {self.layers}")
        if not 0 <= self.drop_path < 1:
            raise UsageError(f"drop_path must be in [0, 1), got {self.drop_path}")
        check_dataset_spec(self.dataset)


def _current_names(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the optimiser's legacy names (LEGACY_NAMES) in their WeightSGD spelling."""
    return {LEGACY_NAMES.get(k, k): v for k, v in values.items()}


def resolve_eval_config(overrides: dict[str, Any]) -> EvalConfig:
    """Defaults < the preset's ``evaluate`` section < overrides."""
    preset_name = overrides.get("preset", "mini")
    if not isinstance(preset_name, str):
        raise UsageError(f"preset must be a name, got {preset_name!r}")
    values = {**_current_names(load_preset(preset_name).get("evaluate") or {}),
              **_current_names(overrides)}
    cfg = build_dataclass(EvalConfig, values, "evaluate field")
    cfg.validate()
    return cfg


def load_genotypes(source: str, index: int | None) -> tuple[list[tuple[str, Genotype]],
                                                             dict[str, Any]]:
    """(label, genotype) pairs from a run folder or a genotype JSON file, and the run config.

    A run with a series gives every recorded architecture, or the one at ``index``.
    """
    path = Path(source)
    if path.is_file():
        try:
            return [(path.stem, Genotype.load(path))], {}
        except (ValueError, OSError) as exc:
            raise UsageError(f"{source} is not a genotype JSON file ({exc})") from None
    run = RunFolder(source).check()
    run_cfg = run.config_dict()
    if run.has_series():
        points = []
        for i, p in enumerate(run.series()):
            try:
                points.append((f"point{p.get('index', i)}", Genotype.from_dict(p["genotype"])))
            except (KeyError, ValueError) as exc:
                raise UsageError(f"{source}: recorded architecture {i} is not a genotype "
                                 f"({exc})") from None
        if index is not None:
            if not 0 <= index < len(points):
                raise UsageError(f"--index {index} is out of range: the series has "
                                 f"{len(points)} architectures")
            points = [points[index]]
        return points, run_cfg
    if index is not None:
        raise UsageError(f"{source} has no series; --index applies to series runs only")
    return [("final", run.genotype())], run_cfg


def train_from_scratch(cfg: EvalConfig, label: str, genotype: Genotype, ops: tuple[str, ...] |
                       None = None, progress: bool = True,
                       log: Callable[[str], None] = print,
                       on_test_read: Callable[[], None] | None = None,
                       run_dir: Path | None = None) -> Path:
    """Train ``genotype``'s network and measure test accuracy once; returns its folder
    (``run_dir`` if given, else a new one under ``cfg.out``). What ``cfg`` leaves open (device,
    threads, image size, augmentation) is decided here, before its config is saved."""
    machine = machine_decisions(cfg)
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size)
    cfg = cfg.decide(**machine, **cfg.data_decisions(data.image_size))
    device = torch.device(cfg.device)
    assert cfg.threads is not None  # decided above
    torch.set_num_threads(cfg.threads)
    layers = cfg.layers or (len(genotype.cell_groups) if genotype.cell_groups
                            else cfg.restricted_layers)
    seed_everything(cfg.seed)  # the network's initial weights are part of the result
    net, cost = build_network(cfg, label, genotype, layers, data, ops, device)
    if run_dir is not None:
        out = EvalFolder(run_dir)
    else:
        out = EvalFolder(_new_eval_dir(cfg, label, genotype))
    config = {**asdict(cfg), "label": label, "layers_used": layers}
    opt = weight_optimizer(net, cfg)
    metrics: list[dict[str, Any]] = []
    start_epoch, train_time, started = 0, 0.0, time.time()
    if out.has_checkpoint() and _same_training(out, config, genotype):
        state = out.load_checkpoint()
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["torch_rng"])
        metrics, start_epoch = state["metrics"], state["epoch"]
        train_time, started = state["train_time"], state["started"]
        log(f"resuming {label} after epoch {start_epoch}")
    else:
        out.drop_checkpoints()
        out.write_start(config, genotype)
    log(f"training {label} ({cost.macs / 1e6:.2f} M multiply-adds, "
        f"{cost.params / 1e6:.3f} M params) from scratch; writing {out.path}")

    augment = augment_for(cfg.dataset, cfg.augment, cfg.cutout, data)
    steps = math.ceil(len(data.train) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps, initial=start_epoch * steps, disable=not progress,
               desc=label, unit="step", dynamic_ncols=True)
    t0 = time.perf_counter() - train_time
    for epoch in range(start_epoch, cfg.epochs):
        lr = scheduled_lr(cfg, epoch, cfg.epochs)
        set_lr(opt, lr)
        # DARTS ramps drop-path linearly over training.
        net.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        net.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        total, correct, n = 0.0, 0, 0
        for x, y in data.train.batches(cfg.batch_size, gen, device, augment):
            logits, aux = net(x)
            loss = F.cross_entropy(logits, y)
            if aux is not None:
                loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not math.isfinite(float(loss.detach())):
                raise UsageError(f"{label}: training diverged (loss {float(loss.detach())}) at "
                                 f"epoch {epoch}; lower the learning rate")
            clip_and_step(net, opt, cfg.grad_clip)
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{total / n:.3f}", acc=f"{correct / n:.2f}")
        metrics.append({"epoch": epoch, "lr": lr, "train_loss": total / n,
                        "train_acc": correct / n})
        out.write_metrics(metrics)
        out.save_checkpoint({"epoch": epoch + 1, "net": net.state_dict(),
                             "opt": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                             "metrics": metrics, "train_time": time.perf_counter() - t0,
                             "started": started})
    bar.close()
    train_time = time.perf_counter() - t0
    if on_test_read is not None:
        on_test_read()
    net.eval()
    test_loss, test_acc = evaluate(lambda x: net(x)[0], data.test, cfg.eval_batch_size, device)
    out.write_result(EvalResult(
        label=label, space=genotype.space, dataset=cfg.dataset, seed=cfg.seed,
        epochs=cfg.epochs, channels=cfg.channels, layers=layers, test_acc=test_acc,
        test_loss=test_loss, macs=cost.macs, params=count_parameters(net),
        train_time_s=train_time, counter=COUNTER, dataset_id=dataset_id(cfg.dataset),
        started=started, finished=time.time(), threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY")))
    out.drop_checkpoints()  # the result is what stays
    log(f"{label}: test accuracy {test_acc:.4f} after {cfg.epochs} epochs "
        f"({train_time:.1f} s); {out.path}")
    return out.path


def _same_training(out: EvalFolder, config: dict[str, Any], genotype: Genotype) -> bool:
    """Whether ``out`` holds an interrupted training of exactly this config and genotype
    (where it runs aside: threads, device, data_dir, out, and what was asked in place of the
    decided values, which are compared themselves)."""
    relocatable = {"threads", "device", "data_dir", "out", "requested"}
    try:
        saved = _current_names(out.config())
    except UsageError:
        return False
    same = {k: v for k, v in saved.items() if k not in relocatable} == {
        k: v for k, v in json.loads(json.dumps(config, default=list)).items()
        if k not in relocatable}
    return same and out.genotype() == genotype


def build_network(cfg: EvalConfig, label: str, genotype: Genotype, layers: int, data: Any,
                  ops: tuple[str, ...] | None, device: torch.device) -> tuple[Any, Any]:
    """The genotype's network for training from scratch and its cost; a genotype that does
    not fit (unknown op, a node outside the cell) is a UsageError before anything is written.
    """
    try:
        shape = NetShape(cfg.channels, layers, data.in_channels, data.num_classes,
                         data.image_size)
        genotype.check_depth(layers)
        space = create_space(genotype.space, shape, ops)
        space.check_genotype(genotype)
        net = space.network(genotype, auxiliary=cfg.auxiliary_weight > 0,
                            drop_path_prob=cfg.drop_path).to(device)
        cost = space.genotype_cost(genotype)
    except (ValueError, KeyError, IndexError) as exc:
        raise UsageError(f"cannot build {label}: {exc}") from None
    return net, cost


def _new_eval_dir(cfg: EvalConfig, label: str, genotype: Genotype) -> Path:
    """A fresh folder under ``cfg.out`` for one training from scratch."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.out) / (f"eval-{genotype.space}-{label}-{dataset_slug(cfg.dataset)}-"
                            f"s{cfg.seed}-{stamp}")
    path, n = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    return path
