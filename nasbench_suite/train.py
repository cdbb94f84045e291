"""Train a derived architecture from scratch: `nasbench evaluate`.

The DARTS evaluation recipe (SGD with cosine annealing, cutout, drop-path, auxiliary head).
The test split is read exactly once, after the last epoch: nothing in training can be chosen
by test accuracy. The genotype comes from a run folder (its final genotype, or one point of
its series with ``--index``) or from a genotype JSON file.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nasbench_suite import rundir
from nasbench_suite.accuracy import evaluate
from nasbench_suite.config import build_dataclass, load_preset
from nasbench_suite.data import augment_for, check_dataset_spec, dataset_slug, load_dataset
from nasbench_suite.errors import UsageError
from nasbench_suite.search import resolve_device, seed_everything
from spaces import COUNTER, Genotype, NetShape, create_space
from spaces.network import count_parameters


@dataclass
class EvalConfig:
    """Training from scratch. ``layers`` None takes the space's evaluation depth:
    ``restricted_layers`` (20, as DARTS) for shared cell types, the searched depth for a
    genotype with one architecture per cell (the relaxed space)."""

    source: str = ""
    index: int | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    preset: str = "mini"
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 256
    channels: int = 16
    layers: int | None = None
    restricted_layers: int = 20
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    auxiliary_weight: float = 0.4
    drop_path: float = 0.2
    cutout: int = 0
    augment: str = "auto"
    image_size: int | None = None
    out: str = "results/evals"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "channels"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.layers is not None and self.layers < 3:
            raise UsageError(f"layers must be at least 3, got {self.layers}")
        if not 0 <= self.drop_path < 1:
            raise UsageError(f"drop_path must be in [0, 1), got {self.drop_path}")
        check_dataset_spec(self.dataset)


def resolve_eval_config(overrides: dict[str, Any]) -> EvalConfig:
    """Defaults < the preset's ``evaluate`` section < overrides."""
    preset_name = overrides.get("preset", "mini")
    if not isinstance(preset_name, str):
        raise UsageError(f"preset must be a name, got {preset_name!r}")
    values = {**(load_preset(preset_name).get("evaluate") or {}), **overrides}
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
    run_dir = rundir.check_run_dir(source)
    run_cfg = rundir.read_run_config(run_dir)
    series_path = run_dir / rundir.SERIES
    if series_path.exists():
        series = json.loads(series_path.read_text())
        points = [(f"point{p.get('index', i)}", Genotype.from_dict(p["genotype"]))
                  for i, p in enumerate(series)]
        if index is not None:
            if not 0 <= index < len(points):
                raise UsageError(f"--index {index} is out of range: the series has "
                                 f"{len(points)} architectures")
            points = [points[index]]
        return points, run_cfg
    if index is not None:
        raise UsageError(f"{source} has no series; --index applies to series runs only")
    if not (run_dir / rundir.GENOTYPE).exists():
        raise UsageError(f"{source} has no genotype yet (the search has not finished)")
    return [("final", Genotype.load(run_dir / rundir.GENOTYPE))], run_cfg


def train_from_scratch(cfg: EvalConfig, label: str, genotype: Genotype, ops: tuple[str, ...] |
                       None = None, progress: bool = True,
                       log: Callable[[str], None] = print,
                       on_test_read: Callable[[], None] | None = None,
                       run_dir: Path | None = None) -> Path:
    """Train ``genotype``'s network and measure test accuracy once; returns its folder
    (``run_dir`` if given, else a new one under ``cfg.out``)."""
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size)
    layers = cfg.layers or (len(genotype.cell_groups) if genotype.cell_groups
                            else cfg.restricted_layers)
    try:
        genotype.check_depth(layers)
        space = create_space(genotype.space, NetShape(cfg.channels, layers, data.in_channels,
                                                      data.num_classes, data.image_size), ops)
        net = space.network(genotype, auxiliary=cfg.auxiliary_weight > 0,
                            drop_path_prob=cfg.drop_path).to(device)
        cost = space.genotype_cost(genotype)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"cannot build {label}: {exc}") from None
    if run_dir is not None:
        out = run_dir
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = rundir.new_run_dir(cfg.out, "eval", genotype.space,
                                 f"{label}-{dataset_slug(cfg.dataset)}", cfg.seed)
    rundir.write_json(out / "eval_config.json", {**vars(cfg), "label": label,
                                                 "layers_used": layers})
    rundir.write_json(out / rundir.GENOTYPE, genotype.to_dict())
    log(f"training {label} ({cost.macs / 1e6:.2f} M multiply-adds, "
        f"{cost.params / 1e6:.3f} M params) from scratch; writing {out}")

    seed_everything(cfg.seed)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    augment = augment_for(cfg.dataset, cfg.augment, cfg.cutout)
    steps = math.ceil(len(data.train) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps, disable=not progress, desc=label, unit="step",
               dynamic_ncols=True)
    metrics = []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        lr = cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2
        for group in opt.param_groups:
            group["lr"] = lr
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
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{total / n:.3f}", acc=f"{correct / n:.2f}")
        metrics.append({"epoch": epoch, "lr": lr, "train_loss": total / n,
                        "train_acc": correct / n})
        rundir.write_jsonl(out / rundir.METRICS, metrics)
    bar.close()
    train_time = time.perf_counter() - t0
    if on_test_read is not None:
        on_test_read()
    net.eval()
    test_loss, test_acc = evaluate(lambda x: net(x)[0], data.test, cfg.eval_batch_size, device)
    result = {"label": label, "space": genotype.space, "dataset": cfg.dataset, "seed": cfg.seed,
              "epochs": cfg.epochs, "channels": cfg.channels, "layers": layers,
              "test_acc": test_acc, "test_loss": test_loss, "macs": cost.macs,
              "params": count_parameters(net), "train_time_s": train_time,
              "counter": COUNTER}
    rundir.write_json(out / "result.json", result)
    log(f"{label}: test accuracy {test_acc:.4f} after {cfg.epochs} epochs "
        f"({train_time:.1f} s); {out}")
    return out
