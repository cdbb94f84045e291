"""Datasets, their identity, their checks, and the splits every run uses.

Small datasets (digits, CIFAR, npz arrays) live in memory as normalised tensors: a batch is
an index into them (0.6 ms against ~113 ms for a fresh DataLoader iterator with worker
processes on the project's CPUs). Batch order and augmentation come from a generator seeded
by (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would.
``imagefolder:PATH`` trees stream through a DataLoader with the same seeding.

Splits (:func:`make_splits`), the same for every method at a given seed and dataset:

* ``score``: a fixed, seeded share of the training images (``score_portion``), carved out
  before anything else. It is used only to report accuracies with inherited weights
  (supernet, derived network, recorded architectures); nothing trains on it or chooses by it.
* ``train`` / ``val``: the rest. Methods that need held-out images (bi-level ones, and those
  that choose architectures by held-out accuracy) split it in two (``train_portion``);
  the others train on all of it.
* ``test``: read only by ``nasbench evaluate``, once, after training from scratch.

A dataset is identified by its name plus, for files, a hash of their content
(:func:`dataset_id`), so that the same data reached by two paths is one dataset in tables.
Every check of the data (labels, pixel values, shapes, layout) happens when it is loaded,
before any run folder exists.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nasbench_suite.data import DATASET_KINDS
from nasbench_suite.data.augment import Augment
from nasbench_suite.errors import UsageError
from nasbench_suite.files import first_line

DATASETS = tuple(DATASET_KINDS)
#: labels number the classes 0..K-1 with K at most this (the classifier has K outputs; a
#: stray label of 10^6 would otherwise build a million-output network)
MAX_CLASSES = 100_000

Batch = tuple[torch.Tensor, torch.Tensor]


class TensorSplit:
    """Images (N, C, H, W) float, normalised, and labels (N,), kept in memory."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor,
                 index: torch.Tensor | None = None) -> None:
        self.x, self.y = x, y
        #: positions of these images in the dataset's training (or test) split
        self.index = index if index is not None else torch.arange(len(y))

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.x[index], self.y[index], self.index[index])

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
        try:
            for x, y in loader:
                if augment is not None and gen is not None:
                    x = augment(x, gen)
                yield x.to(device), y.to(device)
        except (OSError, ValueError) as exc:  # PIL: truncated or unreadable image
            raise UsageError(f"cannot read an image of {getattr(self.dataset, 'root', '?')}: "
                             f"{exc}") from None


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
    #: normalisation per channel (black = -mean / std)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass
class Splits:
    """What a run trains, chooses and reports on (module docstring)."""

    train: Split
    val: Split | None
    score: Split
    test: Split

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val) if self.val is not None else 0,
                "score": len(self.score), "test": len(self.test)}


# -- checks ------------------------------------------------------------------------------------
def _check_images(x: np.ndarray, where: str) -> None:
    if x.ndim not in (3, 4) or len(x) == 0:
        raise UsageError(f"{where}: images {x.shape} are not N x H x W (x C)")
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3, 4):
        raise UsageError(f"{where}: images {x.shape} look channels-first (N x C x H x W); "
                         "the Keras layout is channels-last, N x H x W x C")
    if x.ndim == 4 and x.shape[3] not in (1, 3, 4):
        raise UsageError(f"{where}: images {x.shape} have {x.shape[3]} channels; expected "
                         "N x H x W x C with C = 1 or 3")
    if x.dtype == np.uint8:
        return
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise UsageError(f"{where}: images of dtype {x.dtype}; expected uint8")
    if not np.isfinite(x).all():
        raise UsageError(f"{where}: images hold NaN or infinite values")
    if x.min() < 0 or x.max() > 255:
        raise UsageError(f"{where}: pixel values outside [0, 255]")


def _check_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim > 1 and y.size != n:
        raise UsageError(f"{where}: labels of shape {y.shape} for {n} images (one integer "
                         "class per image, not one-hot rows)")
    y = y.reshape(-1)
    if len(y) != n:
        raise UsageError(f"{where}: {len(y)} labels for {n} images")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all()
                and (y == np.round(y)).all()):
            raise UsageError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if (y < 0).any():
        raise UsageError(f"{where}: negative labels (labels must lie in [0, classes))")
    if y.max() >= MAX_CLASSES:
        raise UsageError(f"{where}: label {int(y.max())} is outside [0, {MAX_CLASSES}): the "
                         f"suite takes at most {MAX_CLASSES:,} classes numbered 0..K-1")
    return y.astype(np.int64)


def _count_classes(y_train: np.ndarray, y_test: np.ndarray, where: str) -> int:
    """K, the classifier's width: labels must number the classes 0..K-1 with every class
    among the training labels. A class no training image has means labels that are not
    0..K-1 (e.g. raw ids such as 7 and 1000): the network would grow an output per missing
    id and never train it, so the labels are refused rather than silently widened."""
    classes = int(max(y_train.max(), y_test.max())) + 1
    present = np.unique(y_train)
    if len(present) < classes:
        missing = sorted(set(range(classes)) - set(present.tolist()))
        raise UsageError(f"{where}: labels must number the classes 0..K-1 and every class "
                         f"must have training images; {len(missing)} of 0..{classes - 1} "
                         f"have none (first: {missing[0]}); renumber the labels")
    if classes < 2:
        raise UsageError(f"{where}: the labels name a single class")
    return classes


def check_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, image_size: int | None,
                 where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Every check of in-memory data, numpy only (no tensor is made): the images' layout,
    dtype and values, the labels and the class count. Returns the labels as int64 and K.
    Sweeps run it in the driver, so bad data is refused before Ray starts."""
    for split, x in (("train", x_train), ("test", x_test)):
        _check_images(x, f"{where} x_{split}")
        _square(x, image_size, f"{where} x_{split}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UsageError(f"{where}: train and test images differ in shape")
    ytr = _check_labels(y_train, len(x_train), f"{where} y_train")
    yte = _check_labels(y_test, len(x_test), f"{where} y_test")
    return ytr, yte, _count_classes(ytr, yte, where)


def _square(x: np.ndarray, image_size: int | None, where: str) -> None:
    h, w = x.shape[1], x.shape[2]
    if h != w and image_size is None:
        raise UsageError(f"{where}: images are {h}x{w}, not square; set image_size to "
                         "resize them to squares")


# -- loading -----------------------------------------------------------------------------------
def _normalise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                      torch.Tensor, torch.Tensor]:
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std, mean.flatten(), std.flatten()


def _from_arrays(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, image_size: int | None, scale: float = 255.0,
                 where: str = "") -> ImageData:
    """Checked N x H x W (x C) arrays -> normalised in-memory splits."""
    ytr_np, yte_np, classes = check_arrays(x_train, y_train, x_test, y_test, image_size,
                                           where or name)

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).float() / scale
        t = t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
        if image_size and (image_size != t.shape[-1] or image_size != t.shape[-2]):
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return t.contiguous()

    xtr, xte, mean, std = _normalise(to_tensor(x_train), to_tensor(x_test))
    ytr, yte = torch.from_numpy(ytr_np), torch.from_numpy(yte_np)
    return ImageData(name, TensorSplit(xtr, ytr), TensorSplit(xte, yte), classes,
                     xtr.shape[1], xtr.shape[-1], mean=tuple(mean.tolist()),
                     std=tuple(std.tolist()))


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (N, 8, 8) float32 images and int64 labels, read straight
    from the CSV scikit-learn ships (what ``load_digits`` reads): importing scikit-learn
    costs 1.6 s, paid by every Ray trial and evaluation process of a sweep."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        csv = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # a layout without the CSV file

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def load_digits_data(image_size: int | None) -> ImageData:
    """scikit-learn's embedded 8x8 digits (1,797 images), split 80/20 with a fixed seed."""
    images, targets = _digits_arrays()  # values 0..16
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    cut = int(0.8 * len(images))
    tr, te = order[:cut], order[cut:]
    return _from_arrays("digits", images[tr], targets[tr], images[te], targets[te],
                        image_size, scale=16.0)


#: the arrays of an npz file in the Keras layout
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: str) -> dict[str, np.ndarray]:
    """The four arrays of a Keras-layout npz file, or one UsageError: a missing, truncated
    or non-zip file, a plain .npy under an .npz name, missing arrays, object (pickled)
    arrays."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"npz file not found: {path}")
    try:
        arrays = np.load(file, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise UsageError(f"npz file {path} holds a single array (a .npy file), not the "
                             f"arrays {', '.join(NPZ_ARRAYS)}")
        with arrays:
            missing = set(NPZ_ARRAYS) - set(arrays.files)
            if missing:
                raise UsageError(f"npz file {path} lacks arrays {sorted(missing)} "
                                 "(expected the Keras layout x_train, y_train, x_test, y_test)")
            return {k: arrays[k] for k in NPZ_ARRAYS}
    except UsageError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise UsageError(f"cannot read npz file {path}: {exc}") from None


def load_npz(path: str, image_size: int | None) -> ImageData:
    """Keras layout: x_train, y_train, x_test, y_test; uint8 images N x H x W (x C)."""
    data = read_npz(path)
    stem = Path(path).stem.replace("_", "-")
    return _from_arrays(f"npz-{stem}", data["x_train"], data["y_train"], data["x_test"],
                        data["y_test"], image_size, where=f"npz file {path}")


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, innermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def load_cifar(name: str, data_dir: str | None, image_size: int | None) -> ImageData:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root = data_dir or str(Path.home() / ".cache" / "nasbench-suite" / "data")
    made = _missing_folders(Path(root))
    try:
        train = cls(root, train=True, download=True)
        test = cls(root, train=False, download=True)
    except Exception as exc:  # torchvision: URLError, OSError, RuntimeError (corrupt archive)
        # torchvision made the folder before it tried to download: a failed download leaves
        # no folder the user did not have (nothing in it but the failed attempt's files).
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        raise UsageError(f"cannot load {name} from {root} and cannot download it "
                         f"({first_line(exc)}); pass --data-dir with the extracted "
                         "dataset") from None
    return _from_arrays(name, train.data, np.array(train.targets), test.data,
                        np.array(test.targets), image_size)


#: an imagefolder of at most this many images is checked file by file when it is loaded
VERIFY_LIMIT = 20_000


def load_imagefolder(path: str, image_size: int | None) -> ImageData:
    import torchvision
    from torchvision import transforms

    root = Path(path)
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise UsageError(f"imagefolder {path} needs train/ and val/ (or test/) subfolders")
    size = image_size or 224
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                             transforms.ToTensor(), transforms.Normalize(mean, std)])
    try:
        train = torchvision.datasets.ImageFolder(str(root / "train"), tf)
        test = torchvision.datasets.ImageFolder(str(test_dir), tf)
    except (FileNotFoundError, OSError) as exc:
        raise UsageError(f"imagefolder {path}: {exc}") from None
    if len(train) == 0 or len(test) == 0:
        raise UsageError(f"imagefolder {path}: no images in train/ or {test_dir.name}/")
    if len(train.classes) < 2:
        raise UsageError(f"imagefolder {path}: train/ holds a single class")
    if len(train) + len(test) <= VERIFY_LIMIT:
        _verify_images([p for p, _ in train.samples + test.samples])
    return ImageData(f"imagefolder-{root.name}", FolderSplit(train), FolderSplit(test),
                     len(train.classes), 3, size, in_memory=False, mean=mean, std=std)


def _verify_images(paths: list[str]) -> None:
    from PIL import Image

    for p in paths:
        try:
            with Image.open(p) as img:
                img.verify()
        except Exception as exc:  # PIL raises many kinds for a broken file
            raise UsageError(f"unreadable image {p}: {exc}") from None


def dataset_slug(spec: str) -> str:
    """A folder-name-safe name for a dataset spec."""
    if ":" in spec:
        kind, path = spec.split(":", 1)
        return f"{kind}-{Path(path).stem.replace('_', '-')}"
    return spec


@lru_cache(maxsize=32)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _tree_hash(root: Path) -> str:
    """A fingerprint of an image tree: relative paths and sizes (reading every image of an
    ImageNet-sized tree would take longer than a search)."""
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            digest.update(f"{p.relative_to(root)}\0{p.stat().st_size}\n".encode())
    return digest.hexdigest()[:12]


def dataset_id(spec: str) -> str:
    """The dataset's identity: its name, plus a content hash for files (``npz:STEM@HASH``,
    ``imagefolder:NAME@HASH``), so two paths to the same file are one dataset."""
    kind, _, path = spec.partition(":")
    if kind == "npz" and path:
        file = Path(path)
        try:
            st = file.stat()
            return f"npz:{file.stem}@{_file_hash(str(file.resolve()), st.st_size, st.st_mtime_ns)}"
        except OSError:
            return f"npz:{file.stem}"
    if kind == "imagefolder" and path:
        root = Path(path)
        return f"imagefolder:{root.resolve().name}@{_tree_hash(root)}" if root.is_dir() \
            else f"imagefolder:{root.name}"
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
    """Reject an unknown dataset name, or a dataset file that is not there, before anything
    is loaded."""
    if spec in ("digits", "cifar10", "cifar100"):
        return
    kind, _, path = spec.partition(":")
    if kind == "npz" and path:
        if not Path(path).is_file():
            raise UsageError(f"npz file not found: {path}")
        return
    if kind == "imagefolder" and path:
        if not Path(path).is_dir():
            raise UsageError(f"imagefolder not found: {path}")
        return
    raise UsageError(f"unknown dataset {spec!r}; choose from {', '.join(DATASETS)}")


def check_dataset(spec: str, image_size: int | None = None) -> None:
    """Everything :func:`load_dataset` would refuse, without building tensors: a sweep calls
    it in the driver, so bad data is one error line before Ray starts, not a failure in
    every trial. npz files are read and checked in full, imagefolders scanned (images
    verified up to VERIFY_LIMIT); cifar10/cifar100 are left to the trials (checking them
    here would download them into the driver's machine, not the trials')."""
    check_dataset_spec(spec)
    kind, _, path = spec.partition(":")
    if kind == "npz":
        data = read_npz(path)
        check_arrays(data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                     image_size, f"npz file {path}")
    elif kind == "imagefolder":
        load_imagefolder(path, image_size)


# -- splits ------------------------------------------------------------------------------------
def split_train_val(train: Split, portion: float, seed: int) -> tuple[Split, Split]:
    """Split training images into search-train and search-val parts (fixed by seed)."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = int(portion * len(train))
    if cut == 0 or cut == len(train):
        raise UsageError(f"train_portion {portion} leaves an empty train or val split")
    return train.subset(order[:cut]), train.subset(order[cut:])


#: the scoring split's permutation seed is the run's seed plus this (a fixed offset keeps it
#: apart from the train/val permutation, which uses the seed itself)
SCORE_SEED_OFFSET = 31_337


def carve_score(train: Split, portion: float, seed: int) -> tuple[Split, Split]:
    """(rest, score): the scoring split, a fixed share of the training images."""
    n = len(train)
    count = round(portion * n)
    if count < 1 or count >= n:
        raise UsageError(f"score_portion {portion} leaves an empty scoring or training split "
                         f"({n} training images)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + SCORE_SEED_OFFSET))
    return train.subset(order[count:].sort().values), train.subset(order[:count].sort().values)


def make_splits(data: ImageData, score_portion: float, seed: int, heldout: bool,
                train_portion: float, max_train_images: int | None = None) -> Splits:
    """The run's splits (module docstring): the scoring split first, then, of the rest, at
    most ``max_train_images`` images, split into train and val when ``heldout``."""
    rest, score = carve_score(data.train, score_portion, seed)
    if max_train_images is not None and max_train_images < len(rest):
        rest = rest.subset(torch.arange(max_train_images))
    val = None
    if heldout:
        rest, val = split_train_val(rest, train_portion, seed)
    return Splits(rest, val, score, data.test)
