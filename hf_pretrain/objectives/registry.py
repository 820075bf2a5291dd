"""Objectives by name: ``--objective NAME`` picks the class registered under it. A new objective is a new module
that registers itself here, and nothing else changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Objective

_OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available as ``--objective cls.name``."""
    if cls.name in _OBJECTIVES:
        raise ValueError(f"an objective named {cls.name!r} is already registered ({_OBJECTIVES[cls.name].__name__})")
    _OBJECTIVES[cls.name] = cls
    return cls


def objective_names() -> list[str]:
    """The registered names, in registration order."""
    return list(_OBJECTIVES)


def objective_classes() -> list[type[Objective]]:
    """The registered classes, in registration order."""
    return list(_OBJECTIVES.values())


def streaming_objectives() -> list[str]:
    """The objectives that train on packed rows, which ``--streaming`` can make as the corpus is read."""
    return [name for name, cls in _OBJECTIVES.items() if cls.streams]


def argument_classes() -> list[type]:
    """The extra argument dataclasses of every registered objective, to parse beside the common ones."""
    return list(dict.fromkeys(cls.arguments_class for cls in _OBJECTIVES.values() if cls.arguments_class))


def other_objectives_flags(name: str) -> dict[str, str]:
    """Flag -> the objective that takes it, for every objective's own argument class but ``name``'s: a run of
    ``--objective name`` is refused such a flag in one line rather than ignoring it."""
    own = objective_class(name).arguments_class
    owners: dict[str, str] = {}
    for cls in _OBJECTIVES.values():
        if cls.arguments_class and cls.arguments_class is not own:
            for flag in dataclasses.fields(cls.arguments_class):
                owners.setdefault(flag.name, cls.name)
    return owners


def make_objective(args, seed: int, parsed: Sequence[object] = ()) -> Objective:
    """The objective ``args.objective`` names, given its own arguments from ``parsed`` (instances of
    :func:`argument_classes`)."""
    cls = objective_class(args.objective)
    extra = next((arguments for arguments in parsed if type(arguments) is cls.arguments_class), None)
    return cls(args, seed, extra)


def objective_class(name: str) -> type[Objective]:
    """The objective registered as ``name``."""
    if name not in _OBJECTIVES:
        raise KeyError(f"no objective named {name!r}; the objectives are: {', '.join(_OBJECTIVES)}")
    return _OBJECTIVES[name]
