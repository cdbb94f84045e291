"""A run on disk: the one module that knows the layout of run and evaluation folders.

Every other module (the search loop, ``show``, the results index, plots, tables, sweeps,
experiments) reads and writes run folders through :class:`RunFolder` and the typed records
below, never by file name. A run folder::

    <method>-<space>-<dataset>-s<seed>-<time>/
      config.yaml      the resolved config (RunConfig): the run can be repeated from it alone
      run.json         RunInfo, written when the run starts: layout version, suite version,
                       the dataset's identity (name + content hash), the space's layout
                       (groups, ops, edges) that every per-op file refers to
      metrics.jsonl    one row per epoch (losses, accuracies with their split, costs, ...)
      events.jsonl     prunes, recorded architectures, rounds, each with its epoch
      arch.jsonl       architecture weights (G x E x O), active mask and genotype per epoch
      genotype.json    the final Genotype; series.json the recorded series, if any
      summary.json     Summary, written last: its presence means the run finished
      checkpoint.pt    everything needed to resume after the last finished epoch (and
                       checkpoint.prev.pt, the one before, in case the newest is unreadable)
      checkpoints/     checkpoints a method keeps for good (PAD-NAS: stage-N.pt, the state
                       after each stage: `nasbench rankcorr` reads them)
      rankcorr.json    RankCorr: `nasbench rankcorr`'s one-shot and stand-alone accuracies
                       of fixed architectures and Kendall's tau per stage (PAD-NAS);
                       rankcorr.png its figure; rankcorr/arch-N/ the trainings from scratch
      truthcorr.json   TruthCorr: `nasbench rankcorr` in a space with a published table:
                       one-shot against table accuracies of fixed cells, Kendall's tau and
                       Spearman's rho per stage (final, or PAD-NAS's kept stages)
      tb/              TensorBoard scalars per epoch (``tensorboard --logdir results/``)
      trial.json       Trial: a sweep trial's identity (sweeps only)
      failure.json     Failure: why the run failed (a sweep trial, or a diverged run)
      writer.lock      locked (flock) by the one process writing the folder; holds its pid

An evaluation folder (``nasbench evaluate``, experiments' ``evals/``) has its own module,
nasbench_suite.store.evalfolder. An experiment keeps
the trainings from scratch of a run ``<dir>/<run>`` in ``<dir>/evals/<run>/<label>/``
(``final``: the run's genotype, ``pointN``: point N of its series); :meth:`RunFolder.evaluations`
finds them.

Every file is written to a temporary name, flushed to disk and renamed, so an interrupted
write never leaves a half file behind; a run folder itself appears only once its config is
in (:meth:`RunFolder.create`). A file that cannot be read is a UsageError naming it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from nasbench_suite.errors import UsageError
from nasbench_suite.files import (
    UMASK,
    atomic_write,
    fsync_dir,
    load_checkpoint,
    read_json,
    read_jsonl,
    save_checkpoint,
    write_json,
    write_jsonl,
)
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.records import (
    ArchRecord,
    DerivedCost,
    EvalResult,
    Failure,
    Inherited,
    RankCorr,
    RunInfo,
    Summary,
    TrialRecord,
    TruthCorr,
    record,
)

#: the run folder's format; run.json carries it (folders without run.json are layout 1)
LAYOUT = 2

_CONFIG = "config.yaml"
_INFO = "run.json"
_SUMMARY = "summary.json"
_METRICS = "metrics.jsonl"
_EVENTS = "events.jsonl"
_ARCH = "arch.jsonl"
_GENOTYPE = "genotype.json"
_SERIES = "series.json"
_CHECKPOINT = "checkpoint.pt"
_PREVIOUS = "checkpoint.prev.pt"
_KEPT = "checkpoints"
_TRIAL = "trial.json"
_FAILURE = "failure.json"
_TENSORBOARD = "tb"
_RANKCORR = "rankcorr.json"
_RANKCORR_DIR = "rankcorr"
_TRUTHCORR = "truthcorr.json"
_LOCK = "writer.lock"

#: the folder beside an experiment's runs that holds their trainings from scratch
EVALS = "evals"

FINISHED, FAILED, UNFINISHED, PENDING = "finished", "failed", "unfinished", "pending"


class RunFolder:
    """One run folder: typed readers and writers for each of its files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # -- what it is -------------------------------------------------------------------------
    def is_run(self) -> bool:
        return (self.path / _CONFIG).is_file()

    def check(self) -> RunFolder:
        """This folder if it is a run folder (it has its config), else a UsageError."""
        if not self.path.is_dir():
            raise UsageError(f"not a folder: {self.path}")
        if not self.is_run():
            raise UsageError(f"{self.path} is not a run folder (no {_CONFIG})")
        return self

    def status(self) -> str:
        """finished (summary), failed (failure record), unfinished (a checkpoint), pending."""
        if (self.path / _SUMMARY).exists():
            return FINISHED
        if (self.path / _FAILURE).exists():
            return FAILED
        if self.has_checkpoint():
            return UNFINISHED
        return PENDING

    def finished(self) -> bool:
        return (self.path / _SUMMARY).exists()

    # -- creation ---------------------------------------------------------------------------
    @staticmethod
    def create(path: Path, config_yaml: str, info: RunInfo, exist_ok: bool = False) -> RunFolder:
        """Make the run folder with its config and run.json in one step: everything is
        written under a temporary name beside it and renamed, so a kill never leaves an
        empty or config-less folder. With ``exist_ok`` an existing folder that holds no
        finished run (a sweep trial's fixed folder) is filled in place instead."""
        path = Path(path)
        if path.exists():
            if not exist_ok:
                raise UsageError(f"{path} already exists")
            folder = RunFolder(path)
            if folder.finished():
                raise UsageError(f"{path} already holds a finished run")
            atomic_write(path / _CONFIG, config_yaml)
            write_json(path / _INFO, asdict(info))
            return folder
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
        os.chmod(tmp, 0o777 & ~UMASK)
        try:
            atomic_write(tmp / _CONFIG, config_yaml)
            write_json(tmp / _INFO, asdict(info))
            (tmp / _LOCK).touch()  # locking the folder later adds no file to it
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(path.parent)
        return RunFolder(path)

    @staticmethod
    def new(out: str | Path, method: str, space: str, dataset: str, seed: int,
            config_yaml: str, info: RunInfo) -> RunFolder:
        """A fresh timestamped folder under ``out``; never an existing one."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(out) / f"{method}-{space}-{dataset}-s{seed}-{stamp}"
        path, n = base, 1
        while True:
            try:
                return RunFolder.create(path, config_yaml, info)
            except UsageError:
                if not path.exists():
                    raise
                path = base.with_name(f"{base.name}-{n}")
                n += 1
            except FileExistsError:
                path = base.with_name(f"{base.name}-{n}")
                n += 1
            except OSError as exc:
                if exc.errno in (17, 39):  # EEXIST, ENOTEMPTY: another run took the name
                    path = base.with_name(f"{base.name}-{n}")
                    n += 1
                    continue
                raise

    # -- the writer's lock -------------------------------------------------------------------
    def lock(self) -> WriteLock:
        """Take the folder for writing: an exclusive, non-blocking flock on its lock file,
        released by :meth:`WriteLock.release` or by the kernel when the process dies (a
        killed run never leaves a stale lock). Two processes writing one folder (two
        ``--resume`` of it, a sweep and a resume) would interleave checkpoints and logs; the
        second gets a UsageError naming the first's pid."""
        path = self.path / _LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UsageError(f"cannot lock {self.path} for writing: "
                             f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _lock_holder(fd)
            os.close(fd)
            raise FolderBusy(f"{self.path} is being written by another process "
                             f"(pid {pid})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return WriteLock(fd)

    def writer(self) -> int | None:
        """The pid of the process writing this folder now (-1 in the instant between its
        lock and its pid being written), or None: the lock is free. Probing takes a shared
        lock for a moment and writes nothing: a running writer is never disturbed, and one
        starting in that very instant is refused before it writes anything."""
        try:
            fd = os.open(self.path / _LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_holder(fd) or -1
        finally:
            os.close(fd)
        return None

    # -- config and info --------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """config.yaml as a mapping (safe loader), or a UsageError."""
        try:
            data = yaml.safe_load((self.path / _CONFIG).read_text())
        except (OSError, yaml.YAMLError):
            raise UsageError(f"{self.path / _CONFIG} is unreadable") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.path / _CONFIG} is not a config mapping")
        return data

    @property
    def config_file(self) -> Path:
        return self.path / _CONFIG

    def write_config(self, config_yaml: str) -> None:
        atomic_write(self.path / _CONFIG, config_yaml)

    def record_resume_threads(self, threads: int) -> None:
        """Note in run.json that a resume ran with ``threads`` instead of the run's own."""
        info = self.info()
        write_json(self.path / _INFO, asdict(dataclasses.replace(
            info, resumed_threads=[*info.resumed_threads, threads])))

    def info(self) -> RunInfo:
        """run.json; for layout-1 folders (no run.json) rebuilt from the folder's own
        config and architecture log."""
        path = self.path / _INFO
        if path.exists():
            return record(RunInfo, read_json(path), str(path))
        from nasbench_suite.store.legacy import rebuild_info

        return rebuild_info(self.config_dict(), self.arch())

    # -- logs -------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / _METRICS)

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / _EVENTS)

    def arch(self) -> list[ArchRecord]:
        path = self.path / _ARCH
        return [record(ArchRecord, row, f"{path} line {n}")
                for n, row in enumerate(read_jsonl(path), 1)]

    def write_logs(self, metrics: list[dict[str, Any]], events: list[dict[str, Any]],
                   arch: list[dict[str, Any]]) -> None:
        write_jsonl(self.path / _METRICS, metrics)
        write_jsonl(self.path / _EVENTS, events)
        write_jsonl(self.path / _ARCH, arch)

    def epochs_done(self) -> int:
        return len(self.metrics())

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / _TENSORBOARD

    # -- results ----------------------------------------------------------------------------
    def genotype(self) -> Any:
        from nasbench_suite.spaces import Genotype

        path = self.path / _GENOTYPE
        if not path.exists():
            raise UsageError(f"{self.path} has no genotype yet (the search has not finished)")
        try:
            return Genotype.from_dict(read_json(path))
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from None

    def space(self) -> Any:
        """The run's space at its own sizes (config.yaml and run.json): what derives, costs
        and builds its architectures after the fact."""
        from nasbench_suite.spaces import create_space

        config = self.config_dict()
        ops = tuple(config["ops"]) if config.get("ops") else None
        return create_space(str(config["space"]), self.info().net_shape(config), ops,
                            str(config.get("skip", "auto")))

    def write_genotype(self, genotype: Any) -> None:
        write_json(self.path / _GENOTYPE, genotype.to_dict())

    def has_series(self) -> bool:
        return (self.path / _SERIES).exists()

    def series(self) -> list[dict[str, Any]]:
        """series.json (with genotypes), else the summary's copy (without), else none."""
        path = self.path / _SERIES
        if path.exists():
            data = read_json(path)
        elif self.finished():
            data = self.summary().series
        else:
            return []
        if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
            raise UsageError(f"{path} is not a list of recorded architectures")
        return data

    def write_series(self, series: list[dict[str, Any]]) -> None:
        write_json(self.path / _SERIES, series)

    def summary(self) -> Summary:
        path = self.path / _SUMMARY
        return Summary.from_dict(read_json(path), str(path))

    def write_summary(self, summary: Summary) -> None:
        write_json(self.path / _SUMMARY, summary.to_dict())

    def evaluation_dir(self, label: str) -> Path:
        """Where an experiment trains this run's architecture ``label`` from scratch."""
        return self.path.parent / EVALS / self.name / label

    def evaluations(self) -> dict[str, EvalResult]:
        """The finished trainings from scratch of this run's architectures, by label."""
        root = self.path.parent / EVALS / self.name
        if not root.is_dir():
            return {}
        return {p.name: EvalFolder(p).result() for p in sorted(root.iterdir())
                if EvalFolder(p).done()}

    def evaluation_of(self, label: str, genotype: Any) -> EvalResult | None:
        """The finished training from scratch under ``label`` if it trained exactly
        ``genotype`` (a folder of another architecture, e.g. trained before a rule changed
        which architecture a label means, is no measurement of this one), else None."""
        folder = EvalFolder(self.evaluation_dir(label))
        return folder.result() if folder.done() and folder.genotype() == genotype else None

    # -- rank correlation (PAD-NAS) ----------------------------------------------------------
    def rankcorr_eval_dir(self, index: int) -> Path:
        """Where `nasbench rankcorr` trains its architecture ``index`` from scratch."""
        return self.path / _RANKCORR_DIR / f"arch-{index}"

    def rankcorr_figure(self) -> tuple[Path, str]:
        """(folder, file stem) of the rank-correlation figure."""
        return self.path, Path(_RANKCORR).stem

    def has_rankcorr(self) -> bool:
        return (self.path / _RANKCORR).exists()

    def rankcorr(self) -> RankCorr:
        path = self.path / _RANKCORR
        if not path.exists():
            raise UsageError(f"{self.path} has no rank correlation yet (nasbench rankcorr)")
        return record(RankCorr, read_json(path), str(path))

    def write_rankcorr(self, result: RankCorr) -> None:
        write_json(self.path / _RANKCORR, asdict(result))

    def has_truthcorr(self) -> bool:
        return (self.path / _TRUTHCORR).exists()

    def truthcorr(self) -> TruthCorr:
        path = self.path / _TRUTHCORR
        if not path.exists():
            raise UsageError(f"{self.path} has no rank correlation against the table yet "
                             "(nasbench rankcorr)")
        return record(TruthCorr, read_json(path), str(path))

    def write_truthcorr(self, result: TruthCorr) -> None:
        write_json(self.path / _TRUTHCORR, asdict(result))

    def final_state(self) -> dict[str, Any]:
        """The finished run's final state (supernet, method, ...): its newest checkpoint,
        which the search loop saves after every epoch, the last one included, and leaves in
        place. A UsageError where it is gone (dropped to save space) or is not the last
        epoch's (the newest was unreadable and only the previous one loaded)."""
        if not self.finished():
            raise UsageError(f"{self.path} has not finished")
        if not self.has_checkpoint():
            raise UsageError(f"{self.path} keeps no checkpoint of its final weights "
                             f"({_CHECKPOINT} was removed)")
        state, _ = self.load_checkpoint()
        epochs = self.summary().epochs_run
        if state.get("epoch") != epochs:
            raise UsageError(f"{self.path}: the readable checkpoint is of epoch "
                             f"{state.get('epoch')}, not the final epoch {epochs}")
        return state

    # -- sweeps -----------------------------------------------------------------------------
    def trial(self) -> TrialRecord | None:
        path = self.path / _TRIAL
        return record(TrialRecord, read_json(path), str(path)) if path.exists() else None

    def write_trial(self, trial: TrialRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / _TRIAL, asdict(trial))

    def failure(self) -> Failure | None:
        path = self.path / _FAILURE
        if not path.exists():
            return None
        try:
            return record(Failure, read_json(path), str(path))
        except UsageError:
            return Failure(reason=f"unknown ({_FAILURE} unreadable)")

    def write_failure(self, failure: Failure) -> None:
        write_json(self.path / _FAILURE, asdict(failure))

    def clear_failure(self) -> None:
        (self.path / _FAILURE).unlink(missing_ok=True)

    # -- checkpoints ------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return (self.path / _CHECKPOINT).exists() or (self.path / _PREVIOUS).exists()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """The newest checkpoint replaces the previous one, which is kept beside it until
        the next save: an unreadable newest checkpoint falls back to it."""
        save_checkpoint(self.path / _CHECKPOINT, self.path / _PREVIOUS, state)

    def load_checkpoint(self) -> tuple[dict[str, Any], str]:
        """The newest readable checkpoint and which one it was (``newest`` or ``previous``).

        Loading is weights-only (no pickle): a checkpoint cannot run code.
        """
        return load_checkpoint(self.path / _CHECKPOINT, self.path / _PREVIOUS)

    def keep_checkpoint(self, name: str) -> Path:
        """A copy of the newest checkpoint as ``checkpoints/<name>.pt`` (kept for good)."""
        target = self.path / _KEPT / f"{name}.pt"
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(self.path / _CHECKPOINT, tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return target

    def kept_checkpoints(self) -> dict[str, Path]:
        """name -> path of every kept checkpoint (PAD-NAS: one per stage)."""
        folder = self.path / _KEPT
        return {p.stem: p for p in sorted(folder.glob("*.pt"))} if folder.is_dir() else {}

    def load_kept(self, name: str) -> dict[str, Any]:
        path = self.kept_checkpoints().get(name)
        if path is None:
            raise UsageError(f"{self.path} keeps no checkpoint {name!r}")
        return load_checkpoint(path, path.with_name(f"{path.stem}.missing"))[0]

    def clean_temporaries(self) -> list[Path]:
        """Remove half-written files a killed writer left (``.<name>.*``); returns them."""
        stale = [p for p in self.path.glob(".*") if p.is_file() and p.name.startswith(
            tuple(f".{n}." for n in (_CHECKPOINT, _CONFIG, _METRICS, _EVENTS, _ARCH,
                                     _GENOTYPE, _SERIES, _SUMMARY, _INFO, _TRIAL, _FAILURE)))]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    #: what a run needs to resume anywhere: its config, identity and newest checkpoint (the
    #: logs are rebuilt from the checkpoint)
    _STATE = (_CONFIG, _INFO, _TRIAL, _CHECKPOINT)

    def export_state(self, dest: Path) -> None:
        """Copy what resuming needs into ``dest`` (a Ray Tune checkpoint directory)."""
        dest.mkdir(parents=True, exist_ok=True)
        for name in self._STATE:
            if (self.path / name).exists():
                shutil.copy2(self.path / name, dest / name)

    def import_state(self, src: Path) -> None:
        """Fill this folder from :meth:`export_state`'s copy (a restart on another node)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in self._STATE:
            if (src / name).exists():
                shutil.copy2(src / name, self.path / name)

    def drop_checkpoints(self) -> None:
        for name in (_CHECKPOINT, _PREVIOUS):
            (self.path / name).unlink(missing_ok=True)


class FolderBusy(UsageError):
    """The run folder is locked by another writer: whoever got this must write nothing in
    it (not even a failure record: the folder is the other process's)."""


class WriteLock:
    """A held run-folder lock (:meth:`RunFolder.lock`); closing its file releases it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_holder(fd: int) -> int | None:
    """The pid the lock's holder wrote into the lock file (None if not written yet)."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


# -- finding folders --------------------------------------------------------------------------
def find_runs(paths: list[str | Path] | tuple[str | Path, ...]) -> list[RunFolder]:
    """Run folders given directly or anywhere below the given folders, sorted by path.

    Hidden folders (Ray Tune's ``.ray``, temporary folders) are not searched.
    """
    given = [Path(p) for p in paths]
    if not given:
        raise UsageError("give at least one results folder")
    found: set[Path] = set()
    for root in given:
        if not root.is_dir():
            raise UsageError(f"not a folder: {root}")
        if (root / _CONFIG).is_file():
            found.add(root.resolve())
            continue
        for config in root.rglob(_CONFIG):
            rel = config.relative_to(root).parts
            if not any(part.startswith(".") for part in rel):
                found.add(config.parent.resolve())
    if not found:
        raise UsageError(f"no run folders in {', '.join(str(p) for p in given)}")
    return [RunFolder(p) for p in sorted(found)]


__all__ = ["FAILED", "FINISHED", "LAYOUT", "PENDING", "UNFINISHED", "ArchRecord",
           "DerivedCost", "Failure", "FolderBusy", "Inherited", "RankCorr", "RunFolder",
           "RunInfo", "Summary", "TrialRecord", "TruthCorr", "WriteLock", "atomic_write",
           "find_runs", "read_json", "read_jsonl", "write_json", "write_jsonl"]
