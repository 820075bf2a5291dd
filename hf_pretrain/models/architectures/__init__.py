"""Encoder architectures trained with sparse prediction and document isolation: ``bert``, ``roberta`` and
``modernbert``, one module each. Any other ``AutoModelForMaskedLM`` model type trains as its stock class."""

from . import bert, modernbert, roberta  # noqa: F401  (importing a module registers its architecture)
from .base import Architecture, architecture_for, architecture_names, register_architecture

__all__ = ["Architecture", "architecture_for", "architecture_names", "register_architecture"]
