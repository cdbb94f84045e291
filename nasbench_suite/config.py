"""Run configuration: typed dataclasses, presets as YAML data, and override resolution.

Resolution order, later wins: dataclass defaults < preset ``run`` < preset ``spaces.<space>``
< preset ``methods.<method>.run`` / ``.hp`` < ``--config`` file < command-line overrides.

A user may leave settings to the run (``auto``, or null): the device, the torch threads,
the search skip, the augmentation, the op list, the image size. They are decided once, by
:meth:`Decisions.decide`, as the run starts and before its ``config.yaml`` is written; the saved
config holds the decided values (what ran) and a ``requested`` note of what was asked.
The method's hyper-parameters are built once, by :func:`resolve_config`, into its typed
``Config``, and travel as that object (``RunConfig.hp``).

Searches (:class:`RunConfig`) and trainings from scratch (``search.scratch.EvalConfig``)
share their blocks: :class:`DataConfig`, :class:`ComputeConfig`, the training kit's
``WeightSGD`` and :class:`Decisions`, one definition of each.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from nasbench_suite.data.augment import AUGMENTS, decide_augment
from nasbench_suite.errors import UsageError
from nasbench_suite.methods import Method, MethodConfig, get_method, list_methods
from nasbench_suite.spaces import SPACES, list_spaces

#: settings that say where a run runs, not what it computes: a resume or a sweep that finds
#: its trial may change them, and a resume decides them afresh where the user left them
#: to the machine (``requested``)
MACHINE_FIELDS = frozenset({"device", "threads"})


def check_positive(obj: Any, *names: str, flags: bool = False) -> None:
    """Refuse the first of ``obj``'s ``names`` that is set and not a positive number, in
    one line; None means "decided later" and passes. ``flags`` names them as the user typed
    them on the command line (``--eval-epochs``) rather than as config keys."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            shown = "--" + name.replace("_", "-") if flags else name
            raise UsageError(f"{shown} must be positive, got {value}")


def check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda") and not (
            device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"device must be auto, cpu or cuda[:N], got {device!r}")

if TYPE_CHECKING:
    from nasbench_suite.store.runfolder import RunFolder


@dataclass
class DataConfig:
    """The images and their batches, as a search and a training from scratch read them.

    ``image_size`` None is the images' own size and ``augment`` ``auto`` the dataset's usual
    augmentation (nasbench_suite.data.augment.decide_augment): both decided as a run starts.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    batch_size: int = 64
    eval_batch_size: int = 256
    augment: str = "auto"
    cutout: int = 0

    def check_data(self) -> None:
        check_positive(self, "batch_size", "eval_batch_size", "image_size")
        if self.augment not in AUGMENTS:
            raise UsageError(f"augment must be one of {', '.join(AUGMENTS)}, "
                             f"got {self.augment!r}")
        if self.cutout < 0:
            raise UsageError(f"cutout must be >= 0, got {self.cutout}")

    def data_decisions(self, image_size: int) -> dict[str, Any]:
        """The data settings as they run, given the loaded images' ``image_size``."""
        return {"image_size": image_size, "augment": decide_augment(self.dataset, self.augment)}


@dataclass
class ComputeConfig:
    """Where a run computes: ``device`` auto is CUDA when available, ``threads`` None every
    CPU the process may use (in a Ray worker, the CPUs Ray assigned); both decided as the
    run starts, on the machine it runs on (nasbench_suite.training.loop.machine_decisions)."""

    device: str = "auto"
    threads: int | None = None

    def check_compute(self) -> None:
        check_device(self.device)
        check_positive(self, "threads")


D = TypeVar("D", bound="Decisions")


@dataclass
class Decisions:
    """What the user left to the run and the run decided.

    The config that is saved is the decided one, so that a reader sees what ran; ``requested``
    keeps what the user asked for in its place (``auto``, null), so that a resume on another
    machine decides its device and threads afresh (:func:`resume_values`) and a sweep
    recognises its trials (:func:`requested_config`).
    """

    requested: dict[str, Any] = field(default_factory=dict)

    def decide(self: D, **decided: Any) -> D:
        """This config with ``decided`` values in place of what the user left open; a field
        decided before keeps its first request."""
        changed = {k: v for k, v in decided.items() if getattr(self, k) != v}
        requested = {**{k: getattr(self, k) for k in changed}, **self.requested}
        return dataclasses.replace(self, **changed, requested=requested)


def _default_hp() -> MethodConfig:
    return get_method(RunConfig.method).Config()


@dataclass
class RunConfig(DataConfig, ComputeConfig, Decisions):
    """Everything a search run depends on; ``hp`` is the method's own typed Config, built once
    from the merged hyper-parameters by :func:`resolve_config`."""

    method: str = "darts"
    space: str = "restricted"
    preset: str = "mini"
    seed: int = 0
    amp: bool = False
    epochs: int = 10
    channels: int = 8
    layers: int = 5
    nodes: int = 4
    #: the space's op list (null: the space's own, decided as the run starts)
    ops: list[str] | None = None
    #: the search supernet's stride-1 skip_connect: auto (the space's own: GOLD-NAS's
    #: non-affine BN in the relaxed space, DARTS's identity in the restricted one), bn, identity
    skip: str = "auto"
    #: share of the training images carved out first as the scoring split (reports only)
    score_portion: float = 0.1
    #: share of the remaining images that trains the weights when a method holds out a
    #: validation split (the rest is the validation split)
    train_portion: float = 0.5
    #: at most this many training images after the scoring split (None: all)
    max_train_images: int | None = None
    bn_calib_batches: int = 10
    #: every N epochs (and at the last) the largest eigenvalue of the Hessian of the search
    #: loss w.r.t. the architecture parameters (RobustDARTS); 0 turns it off
    hessian_every: int = 0
    #: Lanczos basis size of the eigenvalue, and the fixed images it is measured on (the
    #: first of a seeded draw from the validation split, or the training split without one)
    hessian_iters: int = 20
    hessian_images: int = 256
    #: ARPACK's relative tolerance on the eigenvalue: 1e-2 is ample to see a 2-6x growth and
    #: needs about a third fewer Hessian-vector products than 1e-4 (each a double backward)
    hessian_tol: float = 1e-4
    #: every N epochs (and at the last) the supernet's and the derived network's accuracy
    #: with inherited weights on the scoring split (batch norm recalibrated); 0: only at the end
    score_every: int = 0
    out: str = "results/runs"
    hp: MethodConfig = field(default_factory=_default_hp)

    def validate(self) -> None:
        method_cls = _method_class(self.method)
        if self.space not in list_spaces():
            raise UsageError(f"unknown space {self.space!r}; choose from "
                             f"{', '.join(list_spaces())}")
        if type(self.hp) is not method_cls.Config:
            raise UsageError(f"hp must be {self.method}'s {method_cls.Config.__name__}, got "
                             f"{type(self.hp).__name__}")
        self.check_data()
        self.check_compute()
        check_positive(self, "epochs", "channels", "layers", "nodes", "bn_calib_batches",
                       "hessian_iters", "hessian_images", "max_train_images")
        if self.layers < 3:
            raise UsageError(f"layers must be at least 3 (two reduction cells), got {self.layers}")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"seed must be in [0, 2^32), got {self.seed}")
        for name in ("train_portion", "score_portion"):
            if not 0 < getattr(self, name) < 1:
                raise UsageError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.skip not in ("auto", "bn", "identity"):
            raise UsageError(f"skip must be auto, bn or identity, got {self.skip!r}")
        if not 0 < self.hessian_tol < 1:
            raise UsageError(f"hessian_tol must be in (0, 1), got {self.hessian_tol}")
        for name in ("hessian_every", "score_every"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        reason = method_cls.unsupported(
            SPACES[self.space].capabilities_for(tuple(self.ops) if self.ops else None))
        if reason:
            raise UsageError(f"method {self.method!r} cannot search the {self.space!r} "
                             f"space: {reason}")
        reason = method_cls.unrunnable(self.hp, self.epochs)
        if reason:
            raise UsageError(reason)

    def space_decisions(self) -> dict[str, Any]:
        """The space's settings as they run: its own op list and search skip unless set."""
        space = SPACES[self.space]
        return {"ops": list(self.ops or space.default_ops),
                "skip": ("bn" if space.skip_bn_default else "identity") if self.skip == "auto"
                else self.skip}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (config.yaml): what a run is first, the ``requested`` note last."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["hp"] = self.hp.to_dict()
        data = {**{k: data[k] for k in ("method", "space", "preset", "seed")}, **data}
        data["requested"] = dict(data.pop("requested"))
        data["ops"] = None if self.ops is None else list(self.ops)
        return data


def _method_class(name: str) -> type[Method]:
    if name not in list_methods():
        raise UsageError(f"unknown method {name!r}; choose from {', '.join(list_methods())}")
    return get_method(name)


def requested_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config as the user asked for it: decided values back to their request.

    A config written before decisions were saved (``auto`` in place) has no note and is
    returned as it is."""
    values = {k: v for k, v in saved.items() if k != "requested"}
    values.update(saved.get("requested") or {})
    return values


def resume_values(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config as a resume takes it: every decision stays as it ran, except the
    machine's (device, threads) where the user left them open: they are this machine's to
    decide. An old config (``auto`` saved) is decided as it was when it started."""
    requested = saved.get("requested") or {}
    values = {k: v for k, v in saved.items() if k != "requested"}
    values.update({k: v for k, v in requested.items() if k in MACHINE_FIELDS})
    return values


PRESETS = ("mini", "paper")
#: an int field's value must fit torch's and numpy's 64-bit integers
MAX_INT = 2**63 - 1
#: upper bounds of integer fields, whatever dataclass holds them (run, evaluation, method):
#: far above any real run, low enough that a typo (an extra digit run) is refused before
#: a run starts instead of running for ever or allocating without bound
INT_LIMITS = {"epochs": 100_000, "batch_size": 1_000_000, "eval_batch_size": 1_000_000,
              "channels": 4096, "layers": 1000, "nodes": 64, "bn_calib_batches": 100_000,
              "hessian_iters": 10_000, "hessian_images": 10_000_000, "image_size": 4096,
              "threads": 4096, "cutout": 4096, "hessian_every": 100_000,
              "score_every": 100_000}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field's type, with YAML's int -> float widening."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise UsageError(f"{where}: expected {len(args)} values, got {value!r}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        return origin(_coerce(v, item, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise UsageError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, hint):
        return value  # a block built already (a method's Config): passed along, not re-read
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is float and not isinstance(value, bool):
        number = value
        if isinstance(value, str):
            # YAML 1.1 reads 1e-3 (no dot) as a string; Python reads it as the number it is.
            try:
                number = float(value)
            except ValueError:
                number = None
        if isinstance(number, (int, float)):
            if not math.isfinite(number):
                raise UsageError(f"{where}: expected a finite number, got {value!r}")
            return float(number)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise UsageError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def build_dataclass(cls: type, values: dict[str, Any], what: str) -> Any:
    """Instantiate ``cls`` from a mapping, rejecting unknown keys and mistyped values."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"unknown {what} {unknown[0]!r}; known: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{what} {k!r}") for k, v in values.items()}
    for key, value in kwargs.items():
        if not isinstance(value, int) or isinstance(value, bool) or key == "seed":
            continue  # seeds: every config checks their range, [0, 2^32), itself
        limit = INT_LIMITS.get(key, MAX_INT)
        if value > limit or value < -MAX_INT:
            raise UsageError(f"{what} {key!r} is out of range: {value} (at most {limit:,})")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad {what}: {exc}") from None


def read_yaml(path: str | Path, what: str) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; any problem is one clear UsageError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {str(path)!r} is not a text file (not UTF-8)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{what} {str(path)!r} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{what} {str(path)!r} must hold a mapping of config fields")
    return data


def load_preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    text = resources.files("nasbench_suite.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def parse_override(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as YAML (so ``2``, ``0.5``, ``[a, b]``, ``null`` work)."""
    if "=" not in item:
        raise UsageError(f"override {item!r} must look like KEY=VALUE")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _split_fields(values: dict[str, Any], method: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route flat keys to run fields or the method's hp: ``hp.x`` or a bare method field."""
    run_names = {f.name for f in fields(RunConfig)} - {"hp"}
    hp_names = {f.name for f in fields(get_method(method).Config)} if method in list_methods() \
        else set()
    run, hp = {}, {}
    for key, value in values.items():
        if key == "hp":
            if not isinstance(value, dict):
                raise UsageError("'hp' must be a mapping of method hyper-parameters")
            hp.update(value)
        elif key.startswith("hp."):
            hp[key[3:]] = value
        elif key in run_names:
            run[key] = value
        elif key in hp_names:
            hp[key] = value
        else:
            raise UsageError(f"unknown config field {key!r} (run fields: "
                             f"{', '.join(sorted(run_names))}; method fields: "
                             f"{', '.join(sorted(hp_names)) or 'none'})")
    return run, hp


def is_field(key: str, method: str) -> bool:
    """Whether ``key`` names a run field or a hyper-parameter of ``method`` (as an override
    would: ``epochs``, ``w_lr``, ``hp.order``)."""
    try:
        _, hp = _split_fields({key: None}, method)
    except UsageError:
        return False
    if not hp:
        return True
    names = {f.name for f in fields(get_method(method).Config)} \
        if method in list_methods() else set()
    return set(hp) <= names


def field_value(config: dict[str, Any], key: str) -> Any:
    """The value an override ``key`` has in a resolved config (``RunConfig.to_dict()``);
    None where the config's method has no such field."""
    method = str(config.get("method", ""))
    if not is_field(key, method):
        return None
    run, hp = _split_fields({key: None}, method)
    return config.get(key) if run else (config.get("hp") or {}).get(next(iter(hp)))


def resolve_config(overrides: dict[str, Any], config_file: str | None = None) -> RunConfig:
    """Merge defaults, preset, config file and overrides into a validated RunConfig."""
    file_values = read_yaml(config_file, "config file") if config_file else {}
    first = {**file_values, **overrides}
    preset_name = first.get("preset", "mini")
    method = first.get("method", RunConfig.method)
    space = first.get("space", RunConfig.space)
    if not isinstance(preset_name, str):
        raise UsageError(f"preset must be a name, got {preset_name!r}")
    preset = load_preset(preset_name)
    run: dict[str, Any] = {}
    hp: dict[str, Any] = {}
    method_preset = (preset.get("methods") or {}).get(method) or {}
    layers = [preset.get("run") or {}, (preset.get("spaces") or {}).get(space) or {},
              method_preset.get("run") or {},
              ((method_preset.get("spaces") or {}).get(space) or {})]
    for layer in layers:
        r, h = _split_fields(layer, str(method))
        run.update(r)
        hp.update(h)
    hp.update(method_preset.get("hp") or {})
    for source in (file_values, overrides):
        r, h = _split_fields(source, str(method))
        run.update(r)
        hp.update(h)
    if not isinstance(method, str):
        raise UsageError(f"method must be a name, got {method!r}")
    if isinstance(run.get("ops"), str):
        # ops as one comma-separated string: a sweep's grid axis must be a scalar (Ray Tune
        # reads a list value as a nested search space)
        run["ops"] = [op.strip() for op in run["ops"].split(",") if op.strip()]
    run["hp"] = build_dataclass(_method_class(method).Config, hp, f"{method} hyper-parameter")
    run["preset"] = preset_name
    cfg = build_dataclass(RunConfig, run, "config field")
    cfg.validate()
    return cfg


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def saved_config(run: RunFolder) -> dict[str, Any]:
    """A run folder's config.yaml as a mapping, without the hyper-parameters its method has
    retired since the run was written (``Config.RETIRED``: DARTS's es_k and es_ratio, the
    parameters of its earlier DARTS-ES rule), so that older runs still load and resume."""
    saved = run.config_dict()
    hp = saved.get("hp") or {}
    method = saved.get("method")
    if not hp or method not in list_methods():
        return saved
    retired = getattr(get_method(method).Config, "RETIRED", frozenset())
    return {**saved, "hp": {k: v for k, v in hp.items() if k not in retired}}


def run_config(run: RunFolder) -> RunConfig:
    """A run folder's config.yaml as a validated RunConfig: what the run ran."""
    try:
        return resolve_config(saved_config(run))
    except UsageError as exc:
        raise UsageError(f"{run.config_file}: {exc}") from None
