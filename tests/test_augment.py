"""The DARTS and GOLD-NAS augmentation recipes, exactly."""

from __future__ import annotations

import torch

from nasbench_suite.data.augment import Augment, cutout_mask


def test_cutout_removes_exactly_a_16x16_square_inside_the_image() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = cutout_mask(500, 32, 32, 16, gen)
    gen = torch.Generator().manual_seed(0)
    cy, cx = torch.randint(0, 32, (500,), generator=gen), torch.randint(0, 32, (500,),
                                                                        generator=gen)
    inside = (cy >= 8) & (cy <= 24) & (cx >= 8) & (cx <= 24)
    assert inside.sum() > 50
    for mask, y, x, whole in zip(masks, cy, cx, inside, strict=True):
        hole = (mask == 0).nonzero()
        if whole:  # DARTS: rows y-8 .. y+7, columns x-8 .. x+7
            assert len(hole) == 256
            assert hole[:, 0].min() == y - 8 and hole[:, 0].max() == y + 7
            assert hole[:, 1].min() == x - 8 and hole[:, 1].max() == x + 7
        else:  # clipped at the border, never larger
            assert 0 < len(hole) < 256


def test_crop_pads_with_black_pixels() -> None:
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    images = torch.zeros(64, 3, 32, 32)  # the mean colour after normalisation
    out = Augment(crop=True, mean=mean, std=std)(images, torch.Generator().manual_seed(1))
    black = (-torch.tensor(mean) / torch.tensor(std)).view(3, 1, 1)
    shifted = (out != 0).any(dim=(1, 2, 3))
    assert shifted.any()
    for img in out[shifted]:
        padded = (img != 0).all(dim=0)  # a pixel of the padding: black in every channel
        assert padded.any()
        assert torch.allclose(img[:, padded], black.expand(3, 32, 32)[:, padded])


def test_autoaugment_is_a_function_of_the_batch_generator() -> None:
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    images = torch.randn(8, 3, 16, 16)
    aug = Augment(autoaugment=True, mean=mean, std=std)
    a = aug(images, torch.Generator().manual_seed(3))
    b = aug(images, torch.Generator().manual_seed(3))
    c = aug(images, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == images.shape and torch.isfinite(a).all()
