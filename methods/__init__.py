"""Method adapters: a registry of method classes, looked up by :func:`get_method`.

A new method is one module here and one entry in ``_MODULES``. Modules are imported on
first use so that ``nasbench list`` stays fast and one broken adapter cannot break the rest.

The registry hands out the class, not an instance (no ``create_method`` factory): callers
need the class before there is anything to construct. Config validation asks it what it
supports (``Config``, ``unsupported``, ``unrunnable``), and the search loop builds the
supernet from ``uses_auxiliary(hp)`` and the data splits from ``needs_heldout`` before it
calls ``cls(space, supernet, hp, ctx)`` (nasbench_suite/search/loop.py).
"""

from __future__ import annotations

import importlib

from nasbench_suite.methods.base import Method, MethodConfig, SearchContext

#: method name -> "module:Class"
_MODULES: dict[str, str] = {
    "darts": "nasbench_suite.methods.darts:Darts",
    "padnas": "nasbench_suite.methods.padnas:PadNas",
    "edas": "nasbench_suite.methods.edas:Edas",
    "nse": "nasbench_suite.methods.nse:Nse",
    "gold": "nasbench_suite.methods.gold:Gold",
}


def list_methods() -> list[str]:
    return sorted(_MODULES)


def get_method(name: str) -> type[Method]:
    """The adapter class of method ``name``; ValueError naming the choices if unknown."""
    if name not in _MODULES:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(list_methods())}")
    module, cls = _MODULES[name].split(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["Method", "MethodConfig", "SearchContext", "get_method", "list_methods"]
