"""Rebuild the shipped NAS-Bench-201 table, byte for byte, from the three published CSVs.

Run ``python -m nasbench_suite.groundtruth.build SRC_DIR`` (SRC_DIR holds
nasbench201_cifar10.csv, nasbench201_cifar100.csv and nasbench201_ImageNet16-120.csv, as
published in Zhenhan-Huang/NASGraph-Public, folder data/, commit
1f8fd621c60a48728fcc890818b6b94eee62e4dc). Why a script and not a one-off: the package ships
only the compact table, so anyone can check that it is exactly what the published files say
(``--check`` compares the rebuild with the shipped file instead of writing it).

Byte-exact by construction: the inputs are checked against their published sha256, rows keep
the files' order (their ``file id``), every number is written as Python's shortest
round-trip ``repr`` of the published value (no rounding, no locale, no pandas formatting that
could change between versions), and gzip gets mtime 0 and no file name. Only a different
zlib deflate implementation could change the bytes (the table itself would read the same).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import sys
from pathlib import Path

from nasbench_suite.errors import UsageError

#: the published CSVs and their sha256 (shared/data/nb201/README.md)
SOURCES: dict[str, tuple[str, str]] = {
    "cifar10": ("nasbench201_cifar10.csv",
                "c82e70b5ffb0dba0f09d88ecc8df5a6d3ce8da8a99ad223285104f4537314033"),
    "cifar100": ("nasbench201_cifar100.csv",
                 "87a42005d7005fdb5e4a938ed83dd306d907523f23e70af907dfd276dd5fe35d"),
    "imagenet16": ("nasbench201_ImageNet16-120.csv",
                   "f5225573584977b283f473b0ded7fe51ae599a67063b3bd02b18de36b29fcd6b"),
}

#: (column of the shipped table, source, column of the source CSV); CIFAR-10 is the
#: benchmark's cifar10-valid setting (validation = the held-out half of the training set)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cifar10_train", "cifar10", "train accuracy"),
    ("cifar10_valid", "cifar10", "validation accuracy"),
    ("cifar10_test", "cifar10", "test accuracy"),
    ("cifar100_valid", "cifar100", "validation accuracy"),
    ("cifar100_test", "cifar100", "test accuracy"),
    ("imagenet16_valid", "imagenet16", "validation accuracy"),
    ("imagenet16_test", "imagenet16", "test accuracy"),
)

#: the shipped table's header: the published file id, the arch string, then COLUMNS
HEADER: tuple[str, ...] = ("file_id", "arch", *(name for name, _, _ in COLUMNS))

#: the number of cells of the space (5 ops on 6 edges)
ROWS = 15_625


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_source(src: Path, name: str) -> list[dict[str, str]]:
    """The rows of one published CSV, after checking its sha256 (a UsageError otherwise)."""
    filename, expected = SOURCES[name]
    path = src / filename
    if not path.is_file():
        raise UsageError(f"missing published table: {path}")
    if sha256(path) != expected:
        raise UsageError(f"{path}: sha256 {sha256(path)} is not the published {expected}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != ROWS:
        raise UsageError(f"{path}: {len(rows)} rows, expected {ROWS}")
    return rows


def build_bytes(src: str | Path) -> bytes:
    """The shipped file's bytes, from the three CSVs in ``src``; the three files must name the
    same cell on every row (they do: a UsageError if a different copy does not)."""
    src = Path(src)
    tables = {name: _read_source(src, name) for name in SOURCES}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    for i, row in enumerate(tables["cifar10"]):
        arch, file_id = row["arch str"], row["file id"]
        for name, table in tables.items():
            if (table[i]["arch str"], table[i]["file id"]) != (arch, file_id):
                raise UsageError(f"row {i}: {name} names {table[i]['arch str']!r}, cifar10 "
                                 f"names {arch!r}")
        writer.writerow([int(file_id), arch,
                         *(repr(float(tables[source][i][column]))
                           for _, source, column in COLUMNS)])
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode("ascii"))
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    from nasbench_suite.groundtruth.nb201 import NB201_SHA256, NB201_TABLE

    parser = argparse.ArgumentParser(
        prog="python -m nasbench_suite.groundtruth.build",
        description="Rebuild the shipped NAS-Bench-201 table from the published CSVs.")
    parser.add_argument("src", help="folder with the three published nasbench201_*.csv")
    parser.add_argument("--out", default=str(NB201_TABLE),
                        help="where to write it (default: the shipped file)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the rebuild differs from the shipped file")
    args = parser.parse_args(argv)
    try:
        data = build_bytes(args.src)
    except UsageError as exc:
        sys.stderr.write(f"build: error: {exc}\n")
        return 2
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = digest == NB201_SHA256
        print(f"rebuilt sha256 {digest}: {'matches' if same else 'DIFFERS from'} the shipped "
              f"{NB201_SHA256}")
        return 0 if same else 1
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {digest}")
    if digest != NB201_SHA256:
        print("the sha256 differs from NB201_SHA256 in nasbench_suite/groundtruth/nb201.py; "
              "update the constant if the change is intended")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
