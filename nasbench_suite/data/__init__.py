"""Datasets (digits, CIFAR, npz, ImageFolder), their identity and checks, the splits every
run shares (datasets.py), and training-time augmentation (augment.py)."""
