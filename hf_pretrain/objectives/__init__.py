"""Pretraining objectives, each one module registered by name: ``mlm``, ``mlm_nsp`` (:mod:`.mlm`) and ``electra``
(:mod:`.electra`). See :mod:`.base` for the interface."""

from . import electra, mlm  # noqa: F401  (importing a module registers its objectives)
from .base import Objective, StepMetrics
from .registry import argument_classes, make_objective, objective_class, objective_names, register_objective

__all__ = ["Objective", "StepMetrics", "argument_classes", "make_objective", "objective_class", "objective_names",
           "register_objective"]
