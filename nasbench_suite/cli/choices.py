"""What the registries offer, named cheaply for the command line: the choices that help
texts list (``{methods}``, ``{spaces}``, ``{presets}``, ``{datasets}`` placeholders) and the
run presets with their one-line descriptions."""

from __future__ import annotations

import argparse


def run_presets() -> dict[str, str]:
    """Run preset name -> the first line of its YAML file's leading comment (``# mini: ...``),
    read from the package without loading the config module (which loads torch)."""
    from importlib import resources

    found: dict[str, str] = {}
    for entry in sorted(resources.files("nasbench_suite.presets").iterdir(),
                        key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            name = entry.name[:-5]
            first = entry.read_text().splitlines()[0].lstrip("#").strip()
            found[name] = first.removeprefix(f"{name}:").strip()
    return found


def registry_choices() -> dict[str, str]:
    """``{methods}``, ``{spaces}``, ``{presets}``, ``{datasets}`` in a help text -> the names
    the registries hold. Called only when help is printed: the method and space registries
    load torch, which parsing a command line must not."""
    from nasbench_suite.data import DATASET_KINDS
    from nasbench_suite.methods import list_methods
    from nasbench_suite.spaces import list_spaces

    return {"{methods}": ", ".join(list_methods()), "{spaces}": ", ".join(list_spaces()),
            "{presets}": ", ".join(run_presets()), "{datasets}": ", ".join(DATASET_KINDS)}


class HelpFormatter(argparse.HelpFormatter):
    """Fills the registry placeholders of :func:`registry_choices` into help texts."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and "{" in text:
            for key, names in registry_choices().items():
                text = text.replace(key, names)
        return text
