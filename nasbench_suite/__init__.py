"""nasbench-suite: differentiable NAS methods compared on equal terms."""

__version__ = "0.1.0"
