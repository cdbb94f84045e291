"""Trainings from scratch of an experiment, as Ray tasks scheduled as searches finish.

For every finished search the experiment trains from scratch (nasbench_suite.training.scratch) its
derived architecture (``final``), every recorded GOLD-NAS architecture of the series seeds
(``pointN``), and the architectures of the literature's remedies replayed on a DARTS search
(methods.darts_rules): ``darts-es`` (the architecture DARTS-ES would have returned) and
``pdarts-mM`` (the final alphas derived with at most M skip connections per normal cell).
An architecture equal to ``final`` is trained once, as ``final``.

Each training is one Ray task with its own resources (``eval_cpus``, ``eval_gpus``),
submitted as soon as its search finishes (a Tune callback) and skipped when its result
exists; an interrupted training resumes from its checkpoint. The driver only collects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import FINISHED, RunFolder

#: the labels of the literature's remedies (nasbench_suite.methods.darts_rules)
ES, PDARTS = "darts-es", "pdarts-m{m}"


@dataclass(frozen=True)
class Settings:
    """What the evaluations of an experiment need to know (plain data: it crosses to Ray)."""

    series_seeds: tuple[int, ...] = ()
    darts_es: bool = False
    pdarts_skips: int | None = None
    eval_cpus: float = 1.0
    eval_gpus: int = 0


def remedy_genotypes(run: RunFolder, settings: Settings) -> dict[str, tuple[Any, dict[str,
                                                                                  Any]]]:
    """label -> (genotype, facts) of the remedies replayed on a DARTS run: DARTS-ES's stop
    and returned epoch, P-DARTS's skip limit on the final alphas."""
    from dataclasses import fields

    import torch

    from nasbench_suite.methods.darts import DartsConfig, early_stop_rule
    from nasbench_suite.methods.darts_rules import limit_skips
    from nasbench_suite.spaces import Genotype

    config = run.config_dict()
    if config.get("method") != "darts" or run.status() != FINISHED:
        return {}
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    hp = config.get("hp") or {}
    arch = run.arch()
    if settings.darts_es:
        eigs = [(int(m["epoch"]), float(m["hessian_eig"])) for m in run.metrics()
                if m.get("hessian_eig") is not None]
        known = {f.name for f in fields(DartsConfig)}  # a run's own DARTS-ES parameters
        rule = DartsConfig(**{k: v for k, v in hp.items() if k in known})
        stop = early_stop_rule(eigs, int(config["epochs"]) - 1, rule)
        if stop is None:
            out[ES] = (run.genotype(), {"stopped_at": None, "epoch": arch[-1].epoch})
        else:
            stopped, epoch = stop
            row = next(a for a in arch if a.epoch == epoch)
            out[ES] = (Genotype.from_dict(row.genotype), {"stopped_at": stopped,
                                                          "epoch": epoch})
    space = run.space() if settings.pdarts_skips is not None else None
    if space is not None and space.capabilities.inputs_per_node is not None:
        # P-DARTS's rule is a top-k derivation's: spaces whose nodes keep k edges
        m = int(settings.pdarts_skips)  # type: ignore[arg-type]
        genotype = limit_skips(space, torch.tensor(arch[-1].weights), m)
        out[PDARTS.format(m=m)] = (genotype, {"max_skips": m})
    return out


def wanted(run: RunFolder, settings: Settings) -> list[tuple[str, Any]]:
    """(label, genotype) of every architecture of a finished search the experiment trains
    from scratch: final, the series points of series seeds, the remedies."""
    from nasbench_suite.training.scratch import load_genotypes

    labels: list[tuple[str, Any]] = [("final", run.genotype())]
    config = run.config_dict()
    if config.get("method") == "gold" and config.get("seed") in settings.series_seeds:
        labels += load_genotypes(str(run.path), None)[0]
    labels += [(label, g) for label, (g, _) in remedy_genotypes(run, settings).items()]
    return labels


def trained_as(run: RunFolder, settings: Settings) -> dict[str, str]:
    """label -> the label its architecture is trained under: the first label with the same
    genotype (a remedy or series point equal to ``final`` is trained once, as ``final``)."""
    first: dict[str, str] = {}
    out = {}
    for label, genotype in wanted(run, settings):
        out[label] = first.setdefault(genotype.to_json(), label)
    return out


def evaluations_of(run: RunFolder, settings: Settings) -> list[tuple[str, Any]]:
    """(label, genotype) of each distinct architecture to train from scratch."""
    labels = trained_as(run, settings)
    return [(label, g) for label, g in wanted(run, settings) if labels[label] == label]


def train_one(run_dir: str, label: str, genotype_json: str, overrides: dict[str, Any],
              threads: int, out_dir: str | None = None) -> str:
    """One training from scratch into ``out_dir`` (default: the run's evaluation folder
    ``label``), a Ray task."""
    import torch

    from nasbench_suite.spaces import Genotype
    from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch

    torch.set_num_threads(max(1, threads))
    run = RunFolder(run_dir)
    config = run.config_dict()
    cfg = resolve_eval_config({**overrides, "source": run_dir, "threads": max(1, threads)})
    ops = tuple(config["ops"]) if config.get("ops") else None
    out = train_from_scratch(cfg, label, Genotype.from_json(genotype_json), ops,
                             progress=False, log=lambda line: None,
                             run_dir=Path(out_dir) if out_dir else run.evaluation_dir(label))
    return str(out)


#: what an experiment trains for a finished search: (label, genotype, folder) triples
Plan = Callable[[RunFolder], list[tuple[str, Any, Path]]]


def default_plan(settings: Settings) -> Plan:
    """darts-failure's plan: :func:`evaluations_of` into the runs' evaluation folders."""

    def plan(run: RunFolder) -> list[tuple[str, Any, Path]]:
        return [(label, g, run.evaluation_dir(label))
                for label, g in evaluations_of(run, settings)]

    return plan


class Launcher:
    """Submits the trainings of finished searches as Ray tasks and collects them."""

    def __init__(self, settings: Settings, overrides_of: Callable[[RunFolder], dict[str, Any]],
                 log: Callable[[str], None], plan: Plan | None = None) -> None:
        """``plan`` says what to train for a finished search (default: darts-failure's
        architectures, :func:`default_plan`); other experiments pass their own (NSE's rounds,
        the rank-correlation architectures of a PAD-NAS run)."""
        import ray

        self.settings = settings
        self.plan = plan or default_plan(settings)
        self.overrides_of = overrides_of
        self.log = log
        self.task = ray.remote(num_cpus=settings.eval_cpus,
                               num_gpus=settings.eval_gpus)(train_one)
        self.pending: dict[Any, str] = {}
        self.submitted: set[str] = set()
        self.failed: list[str] = []

    def submit(self, run_dir: Path) -> None:
        """Every training the search at ``run_dir`` needs that has no result yet."""
        run = RunFolder(run_dir)
        if run.status() != FINISHED:
            return
        for label, genotype, folder in self.plan(run):
            key = f"{run.name}/{label}"
            if key in self.submitted or EvalFolder(folder).done():
                continue
            self.submitted.add(key)
            ref = self.task.remote(str(run.path), label, genotype.to_json(),
                                   self.overrides_of(run),
                                   max(1, int(self.settings.eval_cpus)), str(folder))
            self.pending[ref] = key
            self.log(f"evaluation {key}: submitted")

    def submit_call(self, key: str, folder: Path, fn: Callable[..., str], *args: Any) -> None:
        """One more training, not of a search (an experiment's control cells): ``fn(*args)``
        as a Ray task with the trainings' resources, unless ``folder`` holds its result."""
        import ray

        if key in self.submitted or EvalFolder(folder).done():
            return
        self.submitted.add(key)
        task = ray.remote(num_cpus=self.settings.eval_cpus, num_gpus=self.settings.eval_gpus)(fn)
        self.pending[task.remote(*args)] = key
        self.log(f"evaluation {key}: submitted")

    def wait(self) -> list[str]:
        """Collect every submitted training; returns the ones that failed (with why)."""
        import ray

        while self.pending:
            done, _ = ray.wait(list(self.pending), num_returns=1)
            for ref in done:
                key = self.pending.pop(ref)
                try:
                    ray.get(ref)
                    self.log(f"evaluation {key}: done")
                except Exception as exc:  # a task's error arrives wrapped by Ray
                    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else \
                        type(exc).__name__
                    self.failed.append(f"{key}: {reason}")
                    self.log(f"evaluation {key}: FAILED: {reason}")
        return self.failed
