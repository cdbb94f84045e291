"""Datasets and splits.

Small datasets (digits, CIFAR, npz arrays) live in memory as normalised tensors: a batch is
an index into them (0.6 ms against ~113 ms for a fresh DataLoader iterator with workers on
these CPUs, shared/PERF.md). Batch order and augmentation come from a generator seeded by
(seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would.
``imagefolder:PATH`` trees stream through a DataLoader with the same seeding.

The test split is loaded for final reporting only; bi-level methods split the *training*
images into train and val halves.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nasbench_suite.errors import UsageError

DATASETS = ("digits", "cifar10", "cifar100", "npz:PATH", "imagefolder:PATH")

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation: random crop (pad 4, or 1/8 of the size), flip, cutout."""

    crop: bool = False
    flip: bool = False
    cutout: int = 0

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.crop:
            pad = max(1, h // 8)
            padded = F.pad(x, (pad, pad, pad, pad))
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
        if self.cutout > 0:
            cy = torch.randint(0, h, (n,), generator=gen).to(x.device)
            cx = torch.randint(0, w, (n,), generator=gen).to(x.device)
            ys = torch.arange(h, device=x.device)[None, :, None]
            xs = torch.arange(w, device=x.device)[None, None, :]
            half = self.cutout // 2
            hole = ((ys - cy[:, None, None]).abs() <= half - (self.cutout % 2 == 0)) & \
                   ((xs - cx[:, None, None]).abs() <= half - (self.cutout % 2 == 0))
            x = x * (~hole)[:, None].to(x.dtype)
        return x


class TensorSplit:
    """Images (N, C, H, W) float, normalised, and labels (N,), kept in memory."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.x[index], self.y[index])

    def batches(self, batch_size: int, gen: torch.Generator | None, device: torch.device,
                augment: Augment | None = None, drop_last: bool = False) -> Iterator[Batch]:
        """Shuffled batches when ``gen`` is given, in order otherwise."""
        n = len(self)
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            x = self.x[idx]
            if augment is not None and gen is not None:
                x = augment(x, gen)
            yield x.to(device, non_blocking=True), self.y[idx].to(device, non_blocking=True)


class FolderSplit:
    """An ImageFolder (or a subset of one) streamed through a DataLoader."""

    def __init__(self, dataset: torch.utils.data.Dataset, index: list[int] | None = None) -> None:
        self.dataset = dataset
        self.index = index if index is not None else list(range(len(dataset)))  # type: ignore

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, index: torch.Tensor) -> FolderSplit:
        return FolderSplit(self.dataset, [self.index[i] for i in index.tolist()])

    def batches(self, batch_size: int, gen: torch.Generator | None, device: torch.device,
                augment: Augment | None = None, drop_last: bool = False) -> Iterator[Batch]:
        subset = torch.utils.data.Subset(self.dataset, self.index)
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=gen is not None,
                                             generator=gen, drop_last=drop_last, num_workers=2)
        for x, y in loader:
            if augment is not None and gen is not None:
                x = augment(x, gen)
            yield x.to(device), y.to(device)


Split = TensorSplit | FolderSplit


@dataclass
class ImageData:
    name: str
    train: Split
    test: Split
    num_classes: int
    in_channels: int
    image_size: int
    in_memory: bool = True


def _normalise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std


def _from_arrays(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, image_size: int | None, scale: float = 255.0) -> ImageData:
    """uint8 N x H x W (x C) arrays -> normalised in-memory splits."""

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).float() / scale
        t = t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
        if image_size and image_size != t.shape[-1]:
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return t.contiguous()

    xtr, xte = _normalise(to_tensor(x_train), to_tensor(x_test))
    ytr = torch.from_numpy(np.asarray(y_train).reshape(-1).astype(np.int64))
    yte = torch.from_numpy(np.asarray(y_test).reshape(-1).astype(np.int64))
    classes = int(max(ytr.max(), yte.max())) + 1
    return ImageData(name, TensorSplit(xtr, ytr), TensorSplit(xte, yte), classes,
                     xtr.shape[1], xtr.shape[-1])


def load_digits_data(image_size: int | None) -> ImageData:
    """scikit-learn's embedded 8x8 digits (1,797 images), split 80/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)  # values 0..16
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    cut = int(0.8 * len(images))
    tr, te = order[:cut], order[cut:]
    return _from_arrays("digits", images[tr], digits.target[tr], images[te], digits.target[te],
                        image_size, scale=16.0)


def load_npz(path: str, image_size: int | None) -> ImageData:
    """Keras layout: x_train, y_train, x_test, y_test; uint8 images N x H x W (x C)."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"npz file not found: {path}")
    try:
        with np.load(file, allow_pickle=False) as arrays:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
            if missing:
                raise UsageError(f"npz file {path} lacks arrays {sorted(missing)} "
                                 "(expected the Keras layout x_train, y_train, x_test, y_test)")
            data = {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except UsageError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UsageError(f"cannot read npz file {path}: {exc}") from None
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.ndim not in (3, 4) or len(x) != len(y.reshape(-1)) or len(x) == 0:
            raise UsageError(f"npz file {path}: x_{split} {x.shape} and y_{split} {y.shape} "
                             "do not form N images of H x W (x C) with N labels")
    if data["x_train"].shape[1:] != data["x_test"].shape[1:]:
        raise UsageError(f"npz file {path}: train and test images differ in shape")
    stem = file.stem.replace("_", "-")
    return _from_arrays(f"npz-{stem}", data["x_train"], data["y_train"], data["x_test"],
                        data["y_test"], image_size)


def load_cifar(name: str, data_dir: str | None, image_size: int | None) -> ImageData:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root = data_dir or str(Path.home() / ".cache" / "nasbench-suite" / "data")
    try:
        train = cls(root, train=True, download=True)
        test = cls(root, train=False, download=True)
    except Exception as exc:
        raise UsageError(f"cannot load {name} from {root} and cannot download it ({exc}); "
                         f"pass --data-dir with the extracted dataset") from None
    return _from_arrays(name, train.data, np.array(train.targets), test.data,
                        np.array(test.targets), image_size)


def load_imagefolder(path: str, image_size: int | None) -> ImageData:
    import torchvision
    from torchvision import transforms

    root = Path(path)
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise UsageError(f"imagefolder {path} needs train/ and val/ (or test/) subfolders")
    size = image_size or 224
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    train = torchvision.datasets.ImageFolder(str(root / "train"), tf)
    test = torchvision.datasets.ImageFolder(str(test_dir), tf)
    return ImageData(f"imagefolder-{root.name}", FolderSplit(train), FolderSplit(test),
                     len(train.classes), 3, size, in_memory=False)


def dataset_slug(spec: str) -> str:
    """A folder-name-safe name for a dataset spec."""
    if ":" in spec:
        kind, path = spec.split(":", 1)
        return f"{kind}-{Path(path).stem.replace('_', '-')}"
    return spec


def load_dataset(spec: str, data_dir: str | None = None,
                 image_size: int | None = None) -> ImageData:
    """Load ``digits``, ``cifar10``, ``cifar100``, ``npz:PATH`` or ``imagefolder:PATH``."""
    if spec == "digits":
        return load_digits_data(image_size)
    if spec in ("cifar10", "cifar100"):
        return load_cifar(spec, data_dir, image_size)
    if spec.startswith("npz:"):
        return load_npz(spec[4:], image_size)
    if spec.startswith("imagefolder:"):
        return load_imagefolder(spec[len("imagefolder:"):], image_size)
    raise UsageError(f"unknown dataset {spec!r}; choose from {', '.join(DATASETS)}")


def check_dataset_spec(spec: str) -> None:
    """Reject an unknown dataset name before anything is loaded."""
    if spec in ("digits", "cifar10", "cifar100") or spec.startswith(("npz:", "imagefolder:")):
        return
    raise UsageError(f"unknown dataset {spec!r}; choose from {', '.join(DATASETS)}")


def split_train_val(train: Split, portion: float, seed: int) -> tuple[Split, Split]:
    """Split the training images into search-train and search-val parts (fixed by seed)."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = int(portion * len(train))
    if cut == 0 or cut == len(train):
        raise UsageError(f"train_portion {portion} leaves an empty train or val split")
    return train.subset(order[:cut]), train.subset(order[cut:])


def augment_for(spec: str, mode: str, cutout: int) -> Augment:
    """``auto``: crop and flip for natural images, nothing for digits (not flip-invariant)."""
    if mode == "auto":
        mode = "none" if spec == "digits" else "crop_flip"
    return Augment(crop=mode in ("crop", "crop_flip"), flip=mode == "crop_flip", cutout=cutout)
