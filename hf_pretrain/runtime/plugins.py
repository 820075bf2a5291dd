"""Code of the user's own that registers an objective or an architecture: ``--plugins my_objective.py`` (a file)
or ``--plugins my_package.objectives`` (an importable module), imported before the flags are parsed, so that its
``--objective`` name and its own flags exist by then. Only what the user names is imported."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable

from ..errors import HfPretrainError


def load_plugins(plugins: Iterable[str] | str | None) -> list[str]:
    """Import each plugin (a ``.py`` file or a module name) once, and return the module names."""
    if not plugins:
        return []
    names = []
    for plugin in [plugins] if isinstance(plugins, str) else plugins:
        names.append(_import_file(plugin) if plugin.endswith(".py") else _import_module(plugin))
    return names


def _import_file(path: str) -> str:
    if not os.path.isfile(path):
        raise HfPretrainError(f"--plugins {path}: no such file")
    name = f"hf_pretrain_plugin_{os.path.splitext(os.path.basename(path))[0]}"
    if name in sys.modules:  # imported already (a recipe and `hf-pretrain flags` may both ask)
        return name
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise HfPretrainError(f"--plugins {path}: importing it failed: {type(err).__name__}: {err}") from None
    return name


def _import_module(name: str) -> str:
    try:
        importlib.import_module(name)
    except ImportError as err:
        raise HfPretrainError(f"--plugins {name}: not a .py file, and no module of that name can be imported "
                              f"({err})") from None
    return name
