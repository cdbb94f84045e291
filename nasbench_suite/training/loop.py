"""The one search loop every method runs in.

It owns what the methods share: data and splits, device, seeds, the epoch loop, timing,
metrics, the instruments (inherited-weight accuracies on the scoring split, how far the
architecture parameters moved, the Hessian eigenvalue), progress, checkpoints and resume.
``nasbench run`` and every Ray Tune trial call :func:`run_search`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nasbench_suite import __version__
from nasbench_suite.config import ComputeConfig, RunConfig, config_to_yaml
from nasbench_suite.data.augment import Augment, augment_for
from nasbench_suite.data.datasets import (
    ImageData,
    Split,
    Splits,
    check_dataset_spec,
    dataset_id,
    dataset_slug,
    load_dataset,
    make_splits,
)
from nasbench_suite.errors import Diverged, UsageError
from nasbench_suite.files import check_output, first_line
from nasbench_suite.groundtruth import cell_ground_truth
from nasbench_suite.methods import Method, SearchContext, get_method
from nasbench_suite.spaces import COUNTER, Genotype, NetShape, Space, create_space
from nasbench_suite.spaces.supernet import SuperNet
from nasbench_suite.store.runfolder import (
    LAYOUT,
    DerivedCost,
    Failure,
    Inherited,
    RunFolder,
    RunInfo,
    Summary,
)
from nasbench_suite.threads import default_threads, ray_assigned_cpus
from nasbench_suite.training.accuracy import evaluate
from nasbench_suite.training.inherit import (
    calibration_batches,
    inherited_accuracy,
    supernet_accuracy,
)
from nasbench_suite.training.learning import learning_stats

#: called after every epoch with the epoch's metrics row and the run folder (Ray Tune
#: reports, with a checkpoint, through it)
EpochCallback = Callable[[dict[str, Any], RunFolder], None]

#: the split every reported inherited-weight accuracy is measured on
SCORE = "score"


def decide_device(name: str) -> str:
    """The device a run computes on: ``auto`` is CUDA where this machine has it."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available here")
    return name


def machine_decisions(cfg: ComputeConfig) -> dict[str, Any]:
    """The compute block as this machine runs it (ComputeConfig's ``auto`` and None)."""
    return {"device": decide_device(cfg.device),
            "threads": cfg.threads or default_threads(ray_assigned_cpus())}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Search:
    """Everything a run is built from, validated before any folder is written; ``cfg`` is
    the decided config (no ``auto`` left), the one saved and the one the run reads."""

    cfg: RunConfig
    data: ImageData
    splits: Splits
    space: Space
    method_cls: type[Method]
    device: torch.device
    dataset_id: str

    @property
    def train(self) -> Split:
        return self.splits.train

    @property
    def val(self) -> Split | None:
        return self.splits.val


def prepare(cfg: RunConfig) -> Search:
    """Load the data, decide what the config left open and instantiate the space; every user
    error surfaces here."""
    check_dataset_spec(cfg.dataset)
    machine = machine_decisions(cfg)
    if cfg.amp and not machine["device"].startswith("cuda"):
        raise UsageError("--amp needs a CUDA device (--device cuda)")
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.image_size)
    cfg = cfg.decide(**machine, **cfg.data_decisions(data.image_size), **cfg.space_decisions())
    method_cls = get_method(cfg.method)
    splits = make_splits(data, cfg.score_portion, cfg.seed, method_cls.needs_heldout,
                         cfg.train_portion, cfg.max_train_images)
    try:
        space = create_space(cfg.space, NetShape(cfg.channels, cfg.layers, data.in_channels,
                                                 data.num_classes, data.image_size, cfg.nodes),
                             tuple(cfg.ops or ()), cfg.skip)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Search(cfg, data, splits, space, method_cls, torch.device(cfg.device),
                  dataset_id(cfg.dataset))


def _cycle(make: Callable[[int], Iterator[Any]]) -> Iterator[Any]:
    for k in itertools.count():
        yield from make(k)


def run_info(search: Search) -> RunInfo:
    layout = search.space.layout
    return RunInfo(layout=LAYOUT, suite=__version__,
                   created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), dataset_id=search.dataset_id,
                   groups=list(layout.groups), ops=list(layout.ops),
                   edges=[[e.input, e.node] for e in layout.edges],
                   reduction=list(layout.group_reduction),
                   in_channels=search.data.in_channels, num_classes=search.data.num_classes,
                   image_size=search.data.image_size, threads=torch.get_num_threads(),
                   omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))


class Instruments:
    """What the loop measures beside the search, on data no step or choice reads.

    * inherited-weight accuracies on the scoring split (supernet as searched, derived
      network), BN recalibrated on fixed training batches;
    * the Hessian eigenvalue on fixed batches of the validation split (the training split
      for methods without one), the same images every time it is measured.
    """

    def __init__(self, search: Search, method: Method, supernet: SuperNet) -> None:
        cfg, device = search.cfg, search.device
        self.search, self.method, self.supernet = search, method, supernet
        self.calib = calibration_batches(search.train, cfg.batch_size, cfg.bn_calib_batches,
                                         cfg.seed, device)
        self.score = search.splits.score
        self.hessian_batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        if cfg.hessian_every > 0 and method.arch_parameters():
            source = search.val if search.val is not None else search.train
            gen = torch.Generator().manual_seed(cfg.seed + 271_828)
            order = torch.randperm(len(source), generator=gen)[:cfg.hessian_images]
            self.hessian_batches = list(source.subset(order).batches(cfg.batch_size, None,
                                                                     device))

    def report_accuracy(self, genotype: Genotype) -> float:
        cfg = self.search.cfg
        return inherited_accuracy(self.search.space, self.supernet, genotype, self.calib,
                                  self.score, cfg.eval_batch_size, self.search.device)

    def choice_accuracy(self, split: Split) -> Callable[[Genotype], float]:
        cfg = self.search.cfg

        def score(genotype: Genotype) -> float:
            return inherited_accuracy(self.search.space, self.supernet, genotype, self.calib,
                                      split, cfg.eval_batch_size, self.search.device)

        return score

    def inherited(self) -> Inherited:
        """Supernet (as the method searches it) and derived network on the scoring split."""
        method, cfg = self.method, self.search.cfg
        derived = self.report_accuracy(method.genotype())
        if not method.measures_gap:
            return Inherited(SCORE, derived)
        weights, active = method.mixing()
        supernet = supernet_accuracy(self.supernet, weights, active, self.calib, self.score,
                                     cfg.eval_batch_size, self.search.device)
        return Inherited(SCORE, derived, supernet, supernet - derived)

    def eigenvalue(self) -> dict[str, float]:
        if not self.hessian_batches:
            return {}
        cfg = self.search.cfg
        ev = self.method.hessian_eigenvalue(self.hessian_batches, cfg.hessian_iters,
                                            cfg.hessian_tol)
        return {"hessian_eig": ev.value, "hessian_residual": ev.residual,
                "hessian_products": float(ev.products), "hessian_converged": ev.converged}


def _due(every: int, epoch: int, last: bool) -> bool:
    return every > 0 and (epoch % every == 0 or last)


def run_search(cfg: RunConfig, resume_dir: Path | None = None, progress: bool = True,
               stop_after: int | None = None, on_epoch: EpochCallback | None = None,
               log: Callable[[str], None] = print, run_dir: Path | None = None,
               on_start: Callable[[RunFolder], None] | None = None) -> Path:
    """Run (or resume) a search and return its run folder.

    ``stop_after`` ends the process's work after that many epochs in total, as an
    interruption would (the checkpoint stays; ``--resume`` continues). ``run_dir`` starts a
    new run in exactly that folder instead of a fresh timestamped one under ``cfg.out``:
    sweeps name their trials' folders deterministically so that a re-run finds them.
    ``on_start`` is called once the folder exists (it prints where the run writes).
    The folder is locked (RunFolder.lock) from its first write to the search's end.
    """
    with contextlib.ExitStack() as locks:
        return _run_search(cfg, resume_dir, progress, stop_after, on_epoch, log, run_dir,
                           on_start, locks)


def _run_search(cfg: RunConfig, resume_dir: Path | None, progress: bool,
                stop_after: int | None, on_epoch: EpochCallback | None,
                log: Callable[[str], None], run_dir: Path | None,
                on_start: Callable[[RunFolder], None] | None,
                locks: contextlib.ExitStack) -> Path:
    if resume_dir is None and run_dir is None:
        check_output(cfg.out)
    search = prepare(cfg)
    cfg, hp = search.cfg, search.cfg.hp  # decided; the method's Config as resolve_config built it
    assert cfg.threads is not None  # decided by prepare
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    space, device = search.space, search.device
    supernet: SuperNet = space.supernet(auxiliary=search.method_cls.uses_auxiliary(hp))
    supernet.to(device)
    steps = math.ceil(len(search.train) / cfg.batch_size)
    holder: dict[str, Instruments] = {}

    def report(genotype: Genotype) -> float:
        return holder["tools"].report_accuracy(genotype)

    choose = None
    if search.val is not None:
        val = search.val

        def choose(genotype: Genotype) -> float:
            return holder["tools"].choice_accuracy(val)(genotype)

    ctx = SearchContext(device=device, epochs=cfg.epochs, steps_per_epoch=steps, seed=cfg.seed,
                        amp=cfg.amp, report_accuracy=report, choice_accuracy=choose)
    try:  # a method refuses its config or space here, before any folder is written
        method = search.method_cls(space, supernet, hp, ctx)
    except ValueError as exc:
        raise UsageError(f"{cfg.method}: {exc}") from None
    tools = holder["tools"] = Instruments(search, method, supernet)
    init_weights = method.arch_weights()
    config_yaml = config_to_yaml(cfg)

    if resume_dir is not None:
        folder = RunFolder(resume_dir)
        locks.enter_context(folder.lock())
        folder.clean_temporaries()
    elif run_dir is not None:
        existing = Path(run_dir).is_dir()
        if existing:  # a sweep trial's folder: locked before its config is rewritten
            locks.enter_context(RunFolder(run_dir).lock())
        folder = RunFolder.create(run_dir, config_yaml, run_info(search), exist_ok=True)
        if not existing:
            locks.enter_context(folder.lock())
    else:
        folder = RunFolder.new(cfg.out, cfg.method, cfg.space, dataset_slug(cfg.dataset),
                               cfg.seed, config_yaml, run_info(search))
        locks.enter_context(folder.lock())

    metrics: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    arch: list[dict[str, Any]] = [_arch_row(-1, init_weights, method)]
    start_epoch, search_time = 0, 0.0
    resumed = ""
    if resume_dir is not None and folder.has_checkpoint():
        state, which = folder.load_checkpoint()
        try:
            supernet.load_state_dict(state["supernet"])
            method.load_state_dict(state["method"])
            torch.set_rng_state(state["torch_rng"])
            metrics, events, arch = state["metrics"], state["events"], state["arch"]
            init_weights = state["init_weights"]
            start_epoch, search_time = int(state["epoch"]), float(state["search_time"])
        except (AttributeError, IndexError, KeyError, RuntimeError, TypeError,
                ValueError) as exc:  # keys, shapes or types another network wrote
            raise UsageError(f"the checkpoint of {folder.path} does not fit this run "
                             f"({type(exc).__name__}: {first_line(exc)})") from None
        resumed = f"resuming after epoch {start_epoch}" + (
            " (the newest checkpoint was unreadable: resumed from the previous one)"
            if which == "previous" else "")
    # Printed once the run really starts: a refusal above is the only line the user sees.
    log("resolved config:\n  " + config_yaml.rstrip().replace("\n", "\n  "))
    if on_start is not None:
        on_start(folder)
    log(f"run folder: {folder.path}")
    if resumed:
        log(resumed)

    augment = augment_for(cfg.dataset, cfg.augment, cfg.cutout, search.data)
    board = _board(folder, start_epoch)
    bar = tqdm(total=cfg.epochs * steps, initial=start_epoch * steps, disable=not progress,
               desc=f"{cfg.method}/{cfg.space}", unit="step", dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if method.finished() or (stop_after is not None and epoch >= stop_after):
                break
            t0 = time.perf_counter()
            try:
                row = _train_epoch(search, method, epoch, augment, bar)
            except Diverged as exc:
                folder.write_failure(Failure(f"diverged: {exc}", "Diverged", len(metrics)))
                raise
            epoch_events = method.end_epoch(epoch)  # prune, grow, evolve: part of the search
            search_time += time.perf_counter() - t0
            for ev in epoch_events:
                ev.setdefault("epoch", epoch)
            events.extend(epoch_events)
            last = epoch + 1 >= cfg.epochs or method.finished()
            row.update(_epoch_report(search, method, tools.score))
            weights = method.arch_weights()
            row.update(learning_stats(init_weights, weights, method.mixing()[1]))
            if _due(cfg.hessian_every, epoch, last):
                row.update(tools.eigenvalue())
            if _due(cfg.score_every, epoch, last):
                inh = tools.inherited()
                row.update(derived_acc_score=inh.derived_acc, supernet_acc_score=inh.supernet_acc,
                           gap_score=inh.gap)
            method.observe(epoch, row)
            row.update(method.epoch_metrics() if method.finished() else {})
            row.update(epoch_time_s=time.perf_counter() - t0, search_time_s=search_time)
            metrics.append(row)
            arch.append(_arch_row(epoch, weights, method))
            folder.write_logs(metrics, events, arch)
            folder.save_checkpoint({
                "epoch": epoch + 1, "search_time": search_time,
                "supernet": supernet.state_dict(), "method": method.state_dict(),
                "torch_rng": torch.get_rng_state(), "init_weights": init_weights,
                "metrics": metrics, "events": events, "arch": arch})
            keep = method.keep_checkpoint(epoch)
            if keep is not None:
                folder.keep_checkpoint(keep)
            _board_row(board, row, epoch)
            if on_epoch is not None:
                on_epoch(row, folder)
    finally:
        if method.finished():  # an early stop: the bar ends at the steps that ran, not the cap
            bar.total = bar.n
            bar.refresh()
        bar.close()
        if board is not None:
            board.close()
    if len(metrics) < cfg.epochs and not method.finished():
        log(f"stopped after epoch {len(metrics)}; resume with: nasbench run --resume "
            f"{folder.path}")
        return folder.path
    _finish(folder, cfg, search, method, tools, metrics, search_time, init_weights, log)
    return folder.path


def _arch_row(epoch: int, weights: torch.Tensor, method: Method) -> dict[str, Any]:
    return {"epoch": epoch, "weights": weights.tolist(), "active": method.mixing()[1].tolist(),
            "genotype": method.genotype().to_dict()}


def _train_epoch(search: Search, method: Method, epoch: int, augment: Augment,
                 bar: tqdm) -> dict[str, Any]:
    """One pass over the search-train split; the batch order depends on (seed, epoch) only."""
    cfg, device = search.cfg, search.device
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    val_iter = None
    if search.val is not None and method.bilevel:
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


def _epoch_report(search: Search, method: Method, score: Split) -> dict[str, Any]:
    """The supernet on the scoring split with its running batch-norm statistics (cheap, every
    epoch; ``*_raw``: not recalibrated) and the cost of the current architecture."""
    supernet = method.supernet
    supernet.eval()
    weights, active = method.mixing()
    weights = weights.detach()
    loss, acc = evaluate(lambda x: supernet(x, weights, active)[0], score,
                         search.cfg.eval_batch_size, search.device)
    genotype = method.genotype()
    cost = search.space.genotype_cost(genotype)
    return {"supernet_raw_loss_score": loss, "supernet_raw_acc_score": acc,
            "derived_macs": cost.macs, "derived_params": cost.params,
            "supernet_macs": search.space.cost.mask_cost(active).macs,
            "active_ops": int(active.sum()),
            "param_free_share": genotype.parameter_free_share(),
            "skip_share_normal": genotype.op_share("skip_connect", reduction=False),
            **method.epoch_metrics()}


def method_postfix(method: Method) -> dict[str, str]:
    return {k: f"{v:.3g}" for k, v in method.progress().items()}


def _board(folder: RunFolder, start_epoch: int) -> Any:
    """A TensorBoard writer in the run folder; events of epochs after a resume point (a
    killed run's last, unsaved epoch) are purged so that each epoch appears once."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is a dependency; stay usable without it
        return None
    return SummaryWriter(str(folder.tensorboard_dir), purge_step=start_epoch or None)


def _board_row(board: Any, row: dict[str, Any], epoch: int) -> None:
    if board is None:
        return
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            board.add_scalar(key, value, epoch)
    board.flush()


def _finish(folder: RunFolder, cfg: RunConfig, search: Search, method: Method,
            tools: Instruments, metrics: list[dict[str, Any]], search_time: float,
            init_weights: torch.Tensor, log: Callable[[str], None]) -> None:
    genotype: Genotype = method.genotype()
    space = search.space
    cost = space.genotype_cost(genotype)
    inherited = tools.inherited()
    folder.write_genotype(genotype)
    series = method.series()
    if series:
        folder.write_series(series)
    final = metrics[-1] if metrics else {}
    learning = {k: float(final[k]) for k in ("alpha_move_median", "alpha_move_max",
                                             "edge_spread_median", "choice_changed_share")
                if k in final}
    stop = "method" if method.finished() else "epochs"
    summary = Summary(
        method=cfg.method, space=cfg.space, dataset=cfg.dataset, dataset_id=search.dataset_id,
        seed=cfg.seed, preset=cfg.preset, epochs_run=len(metrics), device=str(search.device),
        search_time_s=search_time, stop_reason=stop, final=final, inherited=inherited,
        derived=DerivedCost(cost.macs, cost.flops, cost.params,
                            genotype.parameter_free_share()),
        learning=learning, splits=search.splits.sizes(), space_log10_size=space.log10_size(),
        counter=COUNTER, torch=torch.__version__, layout=LAYOUT,
        series=[{k: v for k, v in p.items() if k != "genotype"} for p in series],
        warnings=method.warnings(),
        ground_truth=cell_ground_truth(space, genotype, method.arch_weights(),
                                       method.mixing()[1]))
    folder.write_summary(summary)
    for warning in summary.warnings:
        log(f"warning: {warning}")
    acc = (f"supernet {inherited.supernet_acc:.3f}, " if inherited.supernet_acc is not None
           else "")
    log(f"done: {len(metrics)} epochs, search {search_time:.1f} s; derived "
        f"{cost.macs / 1e6:.2f} M multiply-adds, {cost.params / 1e6:.3f} M params; "
        f"inherited-weight accuracy on the scoring split: {acc}derived {inherited.derived_acc:.3f}")
    truth = summary.ground_truth
    if truth is not None:
        log(f"ground truth (published table) of {truth['gt_arch']}: CIFAR-10 validation "
            f"{truth['gt_cifar10_valid']:.2f}%, percentile {truth['gt_percentile']:.1f}")
    log(f"results in {folder.path}")
