"""Datasets (digits, CIFAR, npz, ImageFolder), their identity and checks, the splits every
run shares (datasets.py), and training-time augmentation (augment.py)."""

#: dataset kind -> one line on it; importing this package loads no torch, so `nasbench list`
#: and `--help` name them cheaply (datasets.py reads the names from here)
DATASET_KINDS: dict[str, str] = {
    "digits": "scikit-learn's 8x8 handwritten digits, embedded (the default; seconds on a CPU)",
    "cifar10": "CIFAR-10, 32x32, 10 classes (torchvision downloads it into --data-dir)",
    "cifar100": "CIFAR-100, 32x32, 100 classes (torchvision downloads it into --data-dir)",
    "npz:PATH": "arrays x_train, y_train, x_test, y_test in one .npz file (Keras layout)",
    "imagefolder:PATH": "a folder with train/ and val/ (or test/), one subfolder per class",
}
