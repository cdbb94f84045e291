"""nasbench-suite: differentiable NAS methods compared on equal terms.

The Python API (nasbench_suite/api.py): :func:`search`, :class:`Run`, :func:`load_run`,
:func:`load_runs`, plus :class:`Genotype`. The names load on first use, so that importing
the package (as the command line does before it sets OpenMP's wait policy) loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {"search": "nasbench_suite.api", "Run": "nasbench_suite.api",
        "load_run": "nasbench_suite.api", "load_runs": "nasbench_suite.api",
        "Genotype": "nasbench_suite.spaces"}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nasbench_suite' has no attribute {name!r}")


__all__ = ["Genotype", "Run", "__version__", "load_run", "load_runs", "search"]
