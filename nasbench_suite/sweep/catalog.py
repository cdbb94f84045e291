"""The sweep files that ship with the package (``nasbench sweep smoke``).

They live in ``nasbench_suite/sweep/presets/`` and are found through importlib.resources,
so an installed suite (a wheel, not the checkout) runs them from any working directory.
This module reads no YAML and imports no torch: ``nasbench list`` names them cheaply.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the package folder of the shipped sweep files (package data, see pyproject.toml)
PRESET_FOLDER = "presets"


def sweep_presets() -> dict[str, Path]:
    """Shipped sweep name -> its file, sorted by name."""
    folder = resources.files("nasbench_suite.sweep") / PRESET_FOLDER
    found = {Path(str(entry)).stem: Path(str(entry)) for entry in folder.iterdir()
             if entry.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def describe(path: Path) -> str:
    """The first clause of the file's leading comment: every shipped file opens with one
    that says what the sweep is for (its first sentence, up to a colon or a full stop)."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    text = " ".join(words)
    for stop in (": ", ". "):
        text = text.split(stop, 1)[0]
    return text.rstrip(".")
