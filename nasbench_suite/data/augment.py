"""Training-time augmentation, as the DARTS and GOLD-NAS pipelines do it.

Batches are normalised tensors in memory (nasbench_suite.data.datasets); augmentation works on them
directly, knowing the normalisation (black is ``-mean / std``), and draws its randomness from
the batch generator, so a resumed run sees exactly the images an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

AUGMENTS = ("auto", "none", "crop", "crop_flip", "autoaugment")


class Normalised(Protocol):
    """What augmentation needs of a dataset: its per-channel normalisation (an ImageData)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, in the order of the DARTS and GOLD-NAS pipelines.

    * ``crop``: pad by 4 (or 1/8 of the size) with black pixels, then a random crop back to
      the size (torchvision's RandomCrop(padding=4) on the raw image, as DARTS does);
    * ``flip``: horizontal flip with probability 1/2;
    * ``autoaugment``: torchvision's AutoAugment with the CIFAR-10 policy, per image, on the
      8-bit image (GOLD-NAS's search pipeline);
    * ``cutout``: after normalisation, a ``cutout`` x ``cutout`` square set to 0 (the mean
      colour), its centre anywhere in the image and clipped at the border (DARTS's Cutout).

    ``mean`` and ``std`` are the normalisation per channel: black is ``-mean / std``.
    """

    crop: bool = False
    flip: bool = False
    cutout: int = 0
    autoaugment: bool = False
    mean: tuple[float, ...] = field(default=(0.0,))
    std: tuple[float, ...] = field(default=(1.0,))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        mean = torch.tensor(self.mean if len(self.mean) == c else self.mean[:1] * c,
                            dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        std = torch.tensor(self.std if len(self.std) == c else self.std[:1] * c,
                           dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        return mean, std

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.crop:
            pad = max(1, h // 8)
            mean, std = self._stats(x)
            black = -mean / std
            padded = F.pad(x - black, (pad, pad, pad, pad)) + black
            dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
            dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
            rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)
            cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)
            idx = torch.arange(n, device=x.device)[:, None, None, None]
            ch = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[idx, ch, rows[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.autoaugment:
            x = self._autoaugment(x, gen)
        if self.cutout > 0:
            x = x * cutout_mask(n, h, w, self.cutout, gen).to(x.device, x.dtype)[:, None]
        return x

    def _autoaugment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        from torchvision.transforms import AutoAugment, AutoAugmentPolicy

        mean, std = self._stats(x)
        raw = ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).cpu()
        policy = AutoAugment(AutoAugmentPolicy.CIFAR10)
        # torchvision draws from the global generator: seed it from ours, then put it back,
        # so the run stays a function of (seed, epoch) and nothing else is disturbed.
        seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([policy(img) for img in raw])
        return (out.to(x.device, x.dtype) / 255 - mean) / std


def cutout_mask(n: int, h: int, w: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """(n, h, w) masks with one zero square each, as DARTS's Cutout: centre (y, x) uniform
    over the image, rows ``clip(y - L // 2, 0, h) : clip(y + L // 2, 0, h)`` and the same for
    columns (so a square inside the image is exactly L x L for an even L)."""
    cy = torch.randint(0, h, (n,), generator=gen)
    cx = torch.randint(0, w, (n,), generator=gen)
    half = length // 2
    y0, y1 = (cy - half).clamp(0, h), (cy + half).clamp(0, h)
    x0, x1 = (cx - half).clamp(0, w), (cx + half).clamp(0, w)
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    hole = ((ys >= y0[:, None, None]) & (ys < y1[:, None, None])
            & (xs >= x0[:, None, None]) & (xs < x1[:, None, None]))
    return (~hole).float()


def decide_augment(spec: str, mode: str) -> str:
    """``auto`` for dataset ``spec``: crop and flip for natural images, nothing for digits
    (not flip-invariant); any other mode is itself."""
    if mode == "auto":
        return "none" if spec == "digits" else "crop_flip"
    return mode


def augment_for(spec: str, mode: str, cutout: int, data: Normalised | None = None) -> Augment:
    """The augmentation of ``mode`` (``auto``: :func:`decide_augment`); ``autoaugment``:
    crop, flip and AutoAugment's CIFAR-10 policy (GOLD-NAS's search)."""
    mode = decide_augment(spec, mode)
    stats = {"mean": data.mean, "std": data.std} if data is not None else {}
    return Augment(crop=mode in ("crop", "crop_flip", "autoaugment"),
                   flip=mode in ("crop_flip", "autoaugment"), cutout=cutout,
                   autoaugment=mode == "autoaugment", **stats)
