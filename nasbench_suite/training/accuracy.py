"""Loss and accuracy of a model over a whole split."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from nasbench_suite.data.datasets import Split


def evaluate(model: Callable[[torch.Tensor], torch.Tensor], split: Split, batch_size: int,
             device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (images -> logits) on ``split``."""
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in split.batches(batch_size, None, device):
            logits = model(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
    return total_loss / max(n, 1), correct / max(n, 1)
