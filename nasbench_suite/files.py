"""Files written so that a crash never leaves half of one, and read so that a broken one is
a clear error; output paths checked before anything is written.

Every write goes to a temporary file in the same folder, is flushed to disk (fsync) and
renamed over the target, and the folder is fsynced so the rename survives a crash. A JSON or
JSON-lines file that cannot be read is a UsageError naming the file (and the line).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: temporary files and folders are created private (0600, 0700); the final ones get the
#: permissions any other file of the user's would (0666 / 0777 minus the umask)
UMASK = _umask()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``path`` through a temporary file in its folder, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, 0o666 & ~UMASK)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash after it keeps the new name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_json(path: Path, what: str | None = None) -> Any:
    """A JSON file, or a UsageError that names it."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {what or path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{what or path} is not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (none if it does not exist), or a UsageError naming it."""
    if not path.exists():
        return []
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UsageError(f"{path} line {n} is not valid JSON") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path} line {n} is not a JSON object")
        rows.append(row)
    return rows


def save_checkpoint(newest: Path, previous: Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state`` to ``newest`` (fsynced, renamed into place); the file it
    replaces becomes ``previous``, the fallback when ``newest`` cannot be read."""
    import torch

    fd, tmp = tempfile.mkstemp(dir=newest.parent, prefix=f".{newest.name}.")
    os.fchmod(fd, 0o666 & ~UMASK)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        if newest.exists():
            os.replace(newest, previous)
        os.replace(tmp, newest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(newest.parent)


def load_checkpoint(newest: Path, previous: Path) -> tuple[dict[str, Any], str]:
    """The newest readable checkpoint and which one it was (``newest`` or ``previous``).

    Weights-only loading (no pickle): a checkpoint cannot run code, and one that holds
    anything else is refused (torch's own message would advise loading it unsafely).
    """
    import torch

    errors = []
    for path, label in ((newest, "newest"), (previous, "previous")):
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            errors.append(f"{path.name}: holds objects a checkpoint never has (refused: "
                          "nothing in it was run)")
            continue
        except EOFError:
            errors.append(f"{path.name}: empty or truncated")
            continue
        except Exception as exc:  # torch raises many kinds; all mean "unreadable"
            errors.append(f"{path.name}: {first_line(exc)}")
            continue
        if isinstance(state, dict) and "epoch" in state:
            return state, label
        errors.append(f"{path.name}: not a checkpoint of this suite")
    if not errors:
        raise UsageError(f"{newest.parent} has no checkpoint to resume from")
    raise UsageError(f"cannot read the checkpoint of {newest.parent}: " + "; ".join(errors))


def first_line(exc: BaseException) -> str:
    """An exception as one line: its first non-empty line."""
    text = str(exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line or type(exc).__name__


# -- output paths ------------------------------------------------------------------------------
def output_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` as an output folder: a folder or nothing yet, never a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what} {path} is a file, not a folder")
    return out


def check_output(out: str | Path) -> Path:
    """``out`` as a folder runs may be written into: a folder, or a path whose nearest
    existing parent is a writable folder; else a UsageError (before anything is written)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"output folder {out} is a file")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {out} cannot be written ({parent} is not a "
                         "writable folder)")
    return path


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves to ``root`` or below it (symlinks followed)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
