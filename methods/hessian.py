"""The largest eigenvalue of a loss Hessian w.r.t. the architecture parameters.

RobustDARTS (Zela et al., ICLR 2020) tracks the *dominant* eigenvalue of the Hessian of the
validation loss with respect to the alphas; its growth goes with DARTS's collapse to
parameter-free ops. "Dominant" there is the largest *algebraic* eigenvalue: the Hessian of a
search network has negative eigenvalues, often larger in magnitude than its largest positive
one, so a power iteration (which finds the largest magnitude) would report the wrong one.

Here ARPACK's Lanczos (``scipy.sparse.linalg.eigsh``, ``which="LA"``) runs on Hessian-vector
products from double backward (no Hessian is formed), from a seeded start vector, so the
same loss gives the same value. The residual ``||H v - lambda v||`` is measured with one more
product and returned beside the value, so a reader can see whether it converged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Eigenvalue:
    """An eigenvalue estimate and how much to trust it."""

    value: float
    #: ||H v - value v|| for the returned unit eigenvector v
    residual: float
    #: Hessian-vector products spent
    products: int
    converged: bool
    #: the smallest algebraic eigenvalue, when asked for
    smallest: float | None = None

    def to_dict(self) -> dict[str, float | int | bool | None]:
        return asdict(self)


def _flat(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def largest_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor],
                       iters: int = 20, seed: int = 0, tol: float = 1e-4,
                       smallest: bool = False) -> Eigenvalue:
    """Largest algebraic eigenvalue of d2 loss / d params2 (and optionally the smallest).

    ``loss_fn`` is evaluated once; the graph is reused for every product. ``iters`` is the
    Lanczos basis size (ARPACK's ``ncv``); ARPACK restarts at most 20 times.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    loss = loss_fn()
    # a parameter the forward never reached (an edge that feeds no computed op, e.g. in a
    # cell whose node is cut off by ``none`` choices) has zero gradient and zero curvature
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(
        params, torch.autograd.grad(loss, params, create_graph=True, allow_unused=True),
        strict=True)]
    flat_grad = _flat(grads)
    n = flat_grad.numel()
    products = 0

    def matvec(v: np.ndarray) -> np.ndarray:
        nonlocal products
        products += 1
        vec = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=flat_grad.dtype,
                              device=flat_grad.device)
        return _hvp(flat_grad, params, vec).detach().double().cpu().numpy()

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)

    def solve(which: str) -> tuple[float, np.ndarray, bool]:
        if n == 1:
            value = float(matvec(np.ones(1))[0])
            return value, np.ones(1), True
        ncv = min(n, max(iters, 3))
        try:
            vals, vecs = eigsh(op, k=1, which=which, v0=v0, ncv=ncv, tol=tol, maxiter=20)
            return float(vals[0]), vecs[:, 0], True
        except ArpackNoConvergence as exc:
            if len(exc.eigenvalues):
                return float(exc.eigenvalues[0]), exc.eigenvectors[:, 0], False
            return float("nan"), v0 / np.linalg.norm(v0), False

    value, vector, converged = solve("LA")
    residual = float(np.linalg.norm(matvec(vector) - value * vector))
    low = solve("SA")[0] if smallest else None
    return Eigenvalue(value, residual, products, converged, low)


def _hvp(flat_grad: torch.Tensor, params: list[torch.Tensor],
         vec: torch.Tensor) -> torch.Tensor:
    """H @ vec by double backward through the gradient's graph."""
    parts = torch.autograd.grad(flat_grad, params, grad_outputs=vec, retain_graph=True,
                                allow_unused=True)
    return torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                      for p, g in zip(params, parts, strict=True)])
