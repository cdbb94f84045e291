"""A sweep as data: methods x spaces x datasets x seeds x grid axes, parsed and expanded.

A sweep file (YAML) or the command line gives a :class:`SweepSpec`; :func:`expand` turns it
into :class:`Trial` s, each a fully resolved and validated run config at a fixed folder
name (``<method>-<space>-<dataset>-s<seed>[-<axis>=<value>...]``, a hash when that would be
too long), so that running the sweep again finds its trials. Every problem with a sweep (an
unknown key, an unknown method, an empty grid, a seed range backwards, a dataset file that is
not there or whose arrays a run would refuse) is a UsageError before anything runs: in the
driver, before Ray starts, so that bad data is one line and not a failure in every trial.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nasbench_suite.config import RunConfig, read_yaml, resolve_config
from nasbench_suite.errors import UsageError

_FILE_KEYS = ("name", "preset", "methods", "method_spaces", "spaces", "datasets", "seeds",
              "grid", "set")
_MAX_NAME = 96
#: config fields that may differ between a trial's saved config and the sweep that finds it
#: (they move the run, not its result)
RELOCATABLE = frozenset({"out", "threads", "device", "data_dir"})
#: a sweep's (or an experiment's) name: one path component, never "." or ".."
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._=+-]*"


def check_name(name: str, what: str = "sweep name") -> str:
    """``name`` if it is one safe path component (letters, digits, ._=+-, not starting with
    a dot): a name can never lead a write outside the output folder."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or name in (".", ".."):
        raise UsageError(f"{what} {name!r} must be one folder name of letters, digits and "
                         "._=+- (no path separators, not starting with a dot)")
    return name


# -- the sweep as data -----------------------------------------------------------------------
@dataclass
class SweepSpec:
    """What to run. ``methods`` maps a method to overrides that apply to it alone; ``grid``
    axes (any config field or method hyper-parameter) multiply every trial; ``fixed`` holds
    overrides shared by all trials (``set`` in a sweep file). ``method_spaces`` restricts a
    method to some of ``spaces`` (GOLD-NAS on the relaxed space only, beside DARTS on both).
    """

    name: str = "sweep"
    methods: dict[str, dict[str, Any]] = field(default_factory=lambda: {"darts": {}})
    spaces: list[str] = field(default_factory=lambda: ["restricted"])
    datasets: list[str] = field(default_factory=lambda: ["digits"])
    seeds: list[int] = field(default_factory=lambda: [0])
    grid: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    method_spaces: dict[str, list[str]] = field(default_factory=dict)

    def spaces_of(self, method: str) -> list[str]:
        only = self.method_spaces.get(method)
        return [s for s in self.spaces if only is None or s in only]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "methods": self.methods,
                "method_spaces": self.method_spaces, "spaces": self.spaces,
                "datasets": self.datasets, "seeds": self.seeds, "grid": self.grid,
                "set": self.fixed}


@dataclass(frozen=True)
class Trial:
    """One grid point: its folder, its resolved config and its label within the sweep."""

    trial_id: str
    run_dir: Path
    config: dict[str, Any]
    axes: dict[str, Any]
    variant: str
    #: what the sweep asks of this trial (method, space, dataset, seed and every override of
    #: the sweep, the method and the grid point): its hyper-parameters in Ray Tune
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return int(self.config["epochs"])


def _names(value: Any, key: str, where: str, kind: type = str) -> list[Any]:
    """A list of names (or ints), accepting a single bare value for one-element lists."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UsageError(f"{where}: {key!r} must not be empty")
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise UsageError(f"{where}: {key!r} must be a list of {kind.__name__}s, "
                             f"got {item!r}")
    if len(set(map(repr, items))) != len(items):
        raise UsageError(f"{where}: {key!r} lists a value twice")
    return list(items)


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise UsageError(f"{where}: {key!r} must be a mapping of config fields")
    return dict(value)


def _methods(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if isinstance(value, dict):
        return {str(m): _mapping(o, f"methods.{m}", where) for m, o in value.items()}
    return {m: {} for m in _names(value, "methods", where)}


def _grid(value: Any, where: str) -> dict[str, list[Any]]:
    grid = _mapping(value, "grid", where)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"{where}: grid axis {key!r} must be a non-empty list of values")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise UsageError(f"{where}: grid axis {key!r} lists a value twice")
        if key in ("method", "space", "dataset", "seed"):
            raise UsageError(f"{where}: give {key!r} as {key}s, not as a grid axis")
    return grid


def spec_from_dict(data: dict[str, Any], where: str, name: str = "sweep") -> SweepSpec:
    """Validate a sweep mapping (a parsed sweep file); every problem is one UsageError."""
    if not data:
        raise UsageError(f"{where} is empty: a sweep file names at least its methods, spaces, "
                         "datasets or seeds")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; a sweep file has "
                         f"{', '.join(_FILE_KEYS)}")
    spec = SweepSpec(name=name)
    if "name" in data:
        spec.name = check_name(data["name"], f"{where}: 'name'")
    if "methods" in data:
        spec.methods = _methods(data["methods"], where)
    if "spaces" in data:
        spec.spaces = _names(data["spaces"], "spaces", where)
    for method, spaces in _mapping(data.get("method_spaces"), "method_spaces", where).items():
        if method not in spec.methods:
            raise UsageError(f"{where}: method_spaces names {method!r}, which is not in "
                             "methods")
        spec.method_spaces[method] = _names(spaces, f"method_spaces.{method}", where)
    if "datasets" in data:
        spec.datasets = _names(data["datasets"], "datasets", where)
    if "seeds" in data:
        spec.seeds = _names(data["seeds"], "seeds", where, int)
    spec.grid = _grid(data.get("grid"), where)
    spec.fixed = _mapping(data.get("set"), "set", where)
    if "preset" in data:
        spec.fixed["preset"] = data["preset"]
    for key in ("method", "space", "dataset", "seed"):
        if key in spec.fixed:
            raise UsageError(f"{where}: set {key}s at the top level, not in 'set'")
    return spec


def find_sweep_file(name: str) -> Path:
    """A path to a sweep file, or the name of one that ships with the package
    (``smoke`` -> nasbench_suite/sweep/presets/smoke.yaml; see ``nasbench list sweeps``)."""
    from nasbench_suite.sweep.catalog import sweep_presets

    path = Path(name)
    if path.is_file():
        return path
    presets = sweep_presets()
    shipped = presets.get(name[:-5] if name.endswith(".yaml") else name)
    if shipped is not None:
        return shipped
    raise UsageError(f"no sweep file {name!r}, nor a shipped sweep of that name (choose "
                     f"from {', '.join(presets)})")


def load_sweep_file(name: str) -> SweepSpec:
    path = find_sweep_file(name)
    return spec_from_dict(read_yaml(path, "sweep file"), f"sweep file {str(path)!r}",
                          name=path.stem)


def parse_axis(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2`` or ``KEY=[V1, V2]`` (YAML) -> (KEY, [V1, V2])."""
    if "=" not in item:
        raise UsageError(f"grid axis {item!r} must look like KEY=V1,V2")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = yaml.safe_load(raw)
        if isinstance(value, list):
            values = value
        elif isinstance(value, str) and "," in raw:
            values = [yaml.safe_load(v) for v in raw.split(",")]
        else:
            values = [value]
    except yaml.YAMLError:
        raise UsageError(f"grid axis {item!r}: values are not valid YAML") from None
    if not key or not values:
        raise UsageError(f"grid axis {item!r} must look like KEY=V1,V2")
    return key, values


# -- expansion ---------------------------------------------------------------------------------
def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "_".join(_value_text(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def trial_folder_name(cfg: RunConfig, axes: dict[str, Any]) -> str:
    """Deterministic and readable; a hash of the grid values when that would be too long."""
    from nasbench_suite.data.datasets import dataset_slug

    base = f"{cfg.method}-{cfg.space}-{dataset_slug(cfg.dataset)}-s{cfg.seed}"
    if not axes:
        return base
    text = "-".join(f"{k}={_value_text(v)}" for k, v in axes.items())
    text = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
    if len(base) + 1 + len(text) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(axes, sort_keys=True, default=str).encode())
        text = f"v{digest.hexdigest()[:10]}"
    return f"{base}-{text}"


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(config, default=list))
    return {k: v for k, v in data.items() if k not in RELOCATABLE}


def expand(spec: SweepSpec, sweep_dir: Path, log: Callable[[str], None] = print) -> list[Trial]:
    """Every trial of the grid, each config resolved and validated before anything runs.

    A method/space pair the method cannot search is left out with a note (a grid over all
    methods and both spaces is the common case); any other bad value is a UsageError.
    """
    from nasbench_suite.data.datasets import check_dataset, check_dataset_spec
    from nasbench_suite.methods import get_method, list_methods
    from nasbench_suite.spaces import SPACES

    axes_names = list(spec.grid)
    trials: list[Trial] = []
    seen: dict[str, Trial] = {}
    # Names first: an unknown method would otherwise surface as whatever its preset entry
    # fails on (a method field the config does not know).
    for kind, names, known in (("method", list(spec.methods), list_methods()),
                               ("space", spec.spaces, sorted(SPACES))):
        for name in names:
            if name not in known:
                raise UsageError(f"unknown {kind} {name!r}; choose from {', '.join(known)}")
    for dataset in spec.datasets:  # caught here, not in every trial
        check_dataset_spec(dataset)
    checked: set[tuple[str, int | None]] = set()
    pairs = [(m, s) for m in spec.methods for s in spec.spaces_of(m)]
    for (method, space), dataset in itertools.product(pairs, spec.datasets):
        if method in list_methods() and space in SPACES:
            reason = get_method(method).unsupported(SPACES[space].capabilities_for())
            if reason:
                log(f"note: leaving out {method} x {space}: {reason}")
                continue
        for values in itertools.product(*(spec.grid[k] for k in axes_names)):
            axes = dict(zip(axes_names, values, strict=True))
            for seed in spec.seeds:
                overrides = {**spec.fixed, **spec.methods[method], **axes, "method": method,
                             "space": space, "dataset": dataset, "seed": seed,
                             "out": str(sweep_dir)}
                try:
                    cfg = resolve_config(overrides)
                except UsageError as exc:
                    raise UsageError(f"sweep trial {method}/{space}/{dataset}/s{seed}"
                                     f"{' ' + str(axes) if axes else ''}: {exc}") from None
                if (cfg.dataset, cfg.image_size) not in checked:
                    # the data itself, in this process: bad data never reaches Ray
                    check_dataset(cfg.dataset, cfg.image_size)
                    checked.add((cfg.dataset, cfg.image_size))
                trial_id = trial_folder_name(cfg, axes)
                if trial_id in seen:
                    digest = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True,
                                                     default=str).encode()).hexdigest()[:8]
                    trial_id = f"{trial_id}-{digest}"
                variant = ", ".join(f"{k}={_value_text(v)}" for k, v in axes.items())
                asked = {k: v for k, v in overrides.items() if k != "out"}
                trial = Trial(trial_id, (sweep_dir / trial_id).resolve(), cfg.to_dict(), axes,
                              variant, asked)
                seen[trial_id] = trial
                trials.append(trial)
    if not trials:
        raise UsageError("the sweep has no trials (every method/space pair was left out)")
    return trials


def spec_with_cli(spec: SweepSpec, methods: Iterable[str] | None = None,
                  spaces: Iterable[str] | None = None, datasets: Iterable[str] | None = None,
                  seeds: Iterable[int] | None = None, grid: Iterable[str] = (),
                  fixed: dict[str, Any] | None = None, name: str | None = None) -> SweepSpec:
    """Command-line values replace a sweep file's lists and extend its grid and fixed fields."""
    if methods:
        spec.methods = {m: spec.methods.get(m, {}) for m in _names(list(methods), "methods",
                                                                    "--methods")}
    if spaces:
        spec.spaces = _names(list(spaces), "spaces", "--spaces")
    if datasets:
        spec.datasets = _names(list(datasets), "datasets", "--datasets")
    if seeds:
        spec.seeds = _names(list(seeds), "seeds", "--seeds", int)
    for item in grid:
        key, values = parse_axis(item)
        spec.grid = spec_from_dict({"grid": {**spec.grid, key: values}}, "--grid").grid
    if fixed:
        spec.fixed.update(fixed)
        for key in ("method", "space", "dataset", "seed"):
            if key in spec.fixed:
                raise UsageError(f"--set {key}=...: use --{key}s for a sweep")
    if name is not None:
        spec.name = name
    check_name(spec.name)
    return spec
