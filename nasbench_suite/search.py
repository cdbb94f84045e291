"""The one search loop every method runs in.

It owns what the methods share: data and splits, device, seeds, the epoch loop, timing,
metrics, progress, checkpoints and resume. ``nasbench run`` and every Ray Tune trial call
:func:`run_search`.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from methods import Method, SearchContext, get_method
from nasbench_suite import rundir
from nasbench_suite.accuracy import evaluate
from nasbench_suite.config import RunConfig, build_dataclass, config_to_yaml
from nasbench_suite.data import (
    Augment,
    ImageData,
    Split,
    augment_for,
    check_dataset_spec,
    dataset_slug,
    load_dataset,
    split_train_val,
)
from nasbench_suite.errors import UsageError
from nasbench_suite.inherit import calibration_batches, inherited_accuracy, supernet_accuracy
from spaces import COUNTER, Genotype, NetShape, Space, create_space
from spaces.supernet import SuperNet

#: called after every epoch with the epoch's metrics row (Ray Tune reports through it)
EpochCallback = Callable[[dict[str, Any]], None]


class Diverged(RuntimeError):
    """The search loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available here")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Search:
    """Everything a run is built from, validated before any folder is written."""

    cfg: RunConfig
    data: ImageData
    train: Split
    val: Split | None
    space: Space
    method_cls: type[Method]
    device: torch.device


def prepare(cfg: RunConfig) -> Search:
    """Load the data and instantiate the space; every user error surfaces here."""
    check_dataset_spec(cfg.dataset)
    if cfg.amp and not cfg.device.startswith("cuda"):
        raise UsageError("--amp needs a CUDA device (--device cuda)")
    device = resolve_device(cfg.device)
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size)
    train: Split = data.train
    if cfg.max_train_images is not None and cfg.max_train_images < len(train):
        train = train.subset(torch.arange(cfg.max_train_images))
    method_cls = get_method(cfg.method)
    val = None
    if method_cls.bilevel:
        train, val = split_train_val(train, cfg.train_portion, cfg.seed)
    ops = tuple(cfg.ops) if cfg.ops else None
    try:
        space = create_space(cfg.space, NetShape(cfg.channels, cfg.layers, data.in_channels,
                                                 data.num_classes, data.image_size, cfg.nodes),
                             ops)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Search(cfg, data, train, val, space, method_cls, device)


def _cycle(make: Callable[[int], Iterator[Any]]) -> Iterator[Any]:
    for k in itertools.count():
        yield from make(k)


def run_search(cfg: RunConfig, resume_dir: Path | None = None, progress: bool = True,
               stop_after: int | None = None, on_epoch: EpochCallback | None = None,
               log: Callable[[str], None] = print, run_dir: Path | None = None) -> Path:
    """Run (or resume) a search and return its run folder.

    ``stop_after`` ends the process's work after that many epochs in total, as an
    interruption would (the checkpoint stays; ``--resume`` continues). ``run_dir`` starts a
    new run in exactly that folder instead of a fresh timestamped one under ``cfg.out``:
    sweeps name their trials' folders deterministically so that a re-run finds them.
    """
    search = prepare(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    hp = build_dataclass(search.method_cls.Config, cfg.hp, f"{cfg.method} hyper-parameter")
    seed_everything(cfg.seed)
    space, device = search.space, search.device
    supernet: SuperNet = space.supernet(auxiliary=search.method_cls.uses_auxiliary(hp))
    supernet.to(device)
    steps = math.ceil(len(search.train) / cfg.batch_size)
    heldout = search.val if search.val is not None else search.data.test
    heldout_name = "val" if search.val is not None else "test"
    calib = calibration_batches(search.train, cfg.batch_size, cfg.bn_calib_batches, cfg.seed,
                                device)

    def score_genotype(genotype: Genotype) -> float:
        return inherited_accuracy(space, supernet, genotype, calib, heldout,
                                  cfg.eval_batch_size, device)

    ctx = SearchContext(device=device, epochs=cfg.epochs, steps_per_epoch=steps, seed=cfg.seed,
                        amp=cfg.amp, score_genotype=score_genotype)
    try:  # a method refuses its config or space here, before any folder is written
        method = search.method_cls(space, supernet, hp, ctx)
    except ValueError as exc:
        raise UsageError(f"{cfg.method}: {exc}") from None

    if resume_dir is not None:
        run_dir = resume_dir
    elif run_dir is not None:
        run_dir = rundir.claim_run_dir(run_dir)
    else:
        run_dir = rundir.new_run_dir(cfg.out, cfg.method, cfg.space, dataset_slug(cfg.dataset),
                                     cfg.seed)
    if resume_dir is None:
        rundir.atomic_write(run_dir / rundir.CONFIG, config_to_yaml(cfg))
    log(f"run folder: {run_dir}")


    metrics: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    arch: list[dict[str, Any]] = []
    start_epoch, search_time = 0, 0.0
    if resume_dir is not None and (resume_dir / rundir.CHECKPOINT).exists():
        state = rundir.load_checkpoint(resume_dir)
        supernet.load_state_dict(state["supernet"])
        method.load_state_dict(state["method"])
        torch.set_rng_state(state["torch_rng"])
        metrics, events, arch = state["metrics"], state["events"], state["arch"]
        start_epoch, search_time = state["epoch"], state["search_time"]
        log(f"resuming after epoch {start_epoch}")

    augment = augment_for(cfg.dataset, cfg.augment, cfg.cutout)
    bar = tqdm(total=cfg.epochs * steps, initial=start_epoch * steps, disable=not progress,
               desc=f"{cfg.method}/{cfg.space}", unit="step", dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if method.finished() or (stop_after is not None and epoch >= stop_after):
                break
            t0 = time.perf_counter()
            row = _train_epoch(search, method, epoch, augment, bar)
            epoch_events = method.end_epoch(epoch)  # prune, grow, evolve: part of the search
            search_time += time.perf_counter() - t0
            for ev in epoch_events:
                ev.setdefault("epoch", epoch)
            events.extend(epoch_events)
            row.update(_epoch_report(search, method, heldout, heldout_name))
            row.update(epoch_time_s=time.perf_counter() - t0, search_time_s=search_time)
            metrics.append(row)
            active = method.mixing()[1]
            arch.append({"epoch": epoch, "weights": method.arch_weights().tolist(),
                         "active": active.tolist(), "genotype": method.genotype().to_dict()})
            _write_logs(run_dir, metrics, events, arch)
            rundir.save_checkpoint(run_dir, {
                "epoch": epoch + 1, "search_time": search_time,
                "supernet": supernet.state_dict(), "method": method.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "metrics": metrics, "events": events, "arch": arch})
            if on_epoch is not None:
                on_epoch(row)
    finally:
        bar.close()
    if len(metrics) < cfg.epochs and not method.finished():
        log(f"stopped after epoch {len(metrics)}; resume with: nasbench run --resume {run_dir}")
        return run_dir
    _finish(run_dir, cfg, search, method, metrics, search_time, heldout, calib, log)
    return run_dir


def _train_epoch(search: Search, method: Method, epoch: int, augment: Augment,
                 bar: tqdm) -> dict[str, Any]:
    """One pass over the search-train split; the batch order depends on (seed, epoch) only."""
    cfg, device = search.cfg, search.device
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    val_iter = None
    if search.val is not None:
        val_split = search.val
        val_gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch + 50_000)
        val_iter = _cycle(lambda k: val_split.batches(cfg.batch_size, val_gen, device, augment))
    method.begin_epoch(epoch)
    sums: dict[str, float] = {}
    n = 0
    for batch in search.train.batches(cfg.batch_size, gen, device, augment):
        stats = method.step(batch, next(val_iter) if val_iter is not None else None)
        if not math.isfinite(stats["loss"]):
            raise Diverged(f"loss became {stats['loss']} at epoch {epoch}")
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{stats['loss']:.3f}", acc=f"{stats['acc']:.2f}",
                        **method_postfix(method))
    return {"epoch": epoch, **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}}


def _epoch_report(search: Search, method: Method, heldout: Split,
                  heldout_name: str) -> dict[str, Any]:
    """Held-out accuracy of the supernet and the cost of the current architecture."""
    supernet = method.supernet
    supernet.eval()
    weights, active = method.mixing()
    weights = weights.detach()
    h_loss, h_acc = evaluate(lambda x: supernet(x, weights, active)[0], heldout,
                             search.cfg.eval_batch_size, search.device)
    genotype = method.genotype()
    cost = search.space.genotype_cost(genotype)
    return {f"{heldout_name}_loss": h_loss, f"{heldout_name}_acc": h_acc,
            "heldout_acc": h_acc, "derived_macs": cost.macs, "derived_params": cost.params,
            "supernet_macs": search.space.cost.mask_cost(active).macs,
            "active_ops": int(active.sum()),
            "param_free_share": genotype.parameter_free_share(), **method.epoch_metrics()}


def method_postfix(method: Method) -> dict[str, str]:
    return {k: f"{v:.3g}" for k, v in method.progress().items()}


def _write_logs(run_dir: Path, metrics: list[dict[str, Any]], events: list[dict[str, Any]],
                arch: list[dict[str, Any]]) -> None:
    rundir.write_jsonl(run_dir / rundir.METRICS, metrics)
    rundir.write_jsonl(run_dir / rundir.EVENTS, events)
    rundir.write_jsonl(run_dir / rundir.ARCH, arch)


def _finish(run_dir: Path, cfg: RunConfig, search: Search, method: Method,
            metrics: list[dict[str, Any]], search_time: float, heldout: Split,
            calib: list[torch.Tensor], log: Callable[[str], None]) -> None:
    genotype: Genotype = method.genotype()
    space, device = search.space, search.device
    cost = space.genotype_cost(genotype)
    weights, active = method.mixing()
    super_acc = supernet_accuracy(method.supernet, weights, active, calib, heldout,
                                  cfg.eval_batch_size, device)
    assert method.ctx.score_genotype is not None
    derived_acc = method.ctx.score_genotype(genotype)
    rundir.write_json(run_dir / rundir.GENOTYPE, genotype.to_dict())
    series = method.series()
    if series:
        rundir.write_json(run_dir / rundir.SERIES, series)
    summary = {
        "method": cfg.method, "space": cfg.space, "dataset": cfg.dataset, "seed": cfg.seed,
        "preset": cfg.preset, "epochs_run": len(metrics), "device": str(device),
        "search_time_s": search_time, "final": metrics[-1] if metrics else {},
        "heldout_split": "val" if search.val is not None else "test",
        "inherited": {"supernet_acc": super_acc, "derived_acc": derived_acc,
                      "gap": super_acc - derived_acc},
        "derived": {"macs": cost.macs, "flops": cost.flops, "params": cost.params,
                    "param_free_share": genotype.parameter_free_share()},
        "space_log10_size": space.log10_size(),
        "counter": COUNTER, "torch": torch.__version__,
        "series": [{k: v for k, v in p.items() if k != "genotype"} for p in series],
    }
    rundir.write_json(run_dir / rundir.SUMMARY, summary)
    log(f"done: {len(metrics)} epochs, search {search_time:.1f} s; derived "
        f"{cost.macs / 1e6:.2f} M multiply-adds, {cost.params / 1e6:.3f} M params; "
        f"held-out acc supernet {super_acc:.3f}, derived (inherited) {derived_acc:.3f}")
    log(f"results in {run_dir}")
