"""The dominant eigenvalue of a loss Hessian, by power iteration on Hessian-vector products.

RobustDARTS (Zela et al., ICLR 2020) tracks the dominant eigenvalue of the Hessian of the
validation loss with respect to the architecture parameters; its growth goes with DARTS's
collapse to parameter-free ops. Products come from double backward, so no Hessian is formed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def dominant_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor],
                        iters: int = 20, tol: float = 1e-4,
                        generator: torch.Generator | None = None) -> float:
    """Eigenvalue of largest magnitude of d2 loss / d params2.

    ``loss_fn`` is evaluated once; the graph is reused for every product.
    """
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    vec = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    norm = torch.sqrt(sum((v * v).sum() for v in vec))  # type: ignore[arg-type]
    vec = [v / norm for v in vec]
    eigenvalue = 0.0
    for _ in range(iters):
        hv = torch.autograd.grad(grads, params, grad_outputs=vec, retain_graph=True)
        new = float(sum((h * v).sum() for h, v in zip(hv, vec, strict=True)))
        norm = torch.sqrt(sum((h * h).sum() for h in hv))  # type: ignore[arg-type]
        if float(norm) == 0.0:
            return 0.0
        vec = [h.detach() / norm for h in hv]
        if abs(new - eigenvalue) <= tol * max(abs(new), 1e-12):
            return new
        eigenvalue = new
    return eigenvalue
