"""Encoder architectures trained with sparse prediction and document isolation (``bert``, ``roberta``,
``modernbert``, ...), one module each. Any other ``AutoModelForMaskedLM`` model type trains as its stock class."""

import importlib
import pkgutil

from .base import Architecture, architecture_for, architecture_names, register_architecture

# Every module of this package is imported, and importing an architecture's module registers it: a new architecture
# is a new file here (or a --plugins file of the user's) and nothing else.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Architecture", "architecture_for", "architecture_names", "register_architecture"]
