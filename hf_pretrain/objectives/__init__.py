"""Pretraining objectives, each one module registered by name: ``mlm``, ``mlm_nsp`` (:mod:`.mlm`), ``electra``
(:mod:`.electra`), ``electra_match`` (:mod:`.electra_match`), ``mlm_sop`` (:mod:`.sop`), ``mlm_sbo`` (:mod:`.sbo`),
``mlm_match`` (:mod:`.match`), ``clm`` and ``prefix_lm`` (:mod:`.clm`), ``contrastive`` (:mod:`.contrastive`). See :mod:`.base` for the interface."""

import importlib
import pkgutil

from .base import Objective, StepMetrics
from .registry import (
    argument_classes,
    make_objective,
    objective_class,
    objective_classes,
    objective_names,
    other_objectives_flags,
    register_objective,
    streaming_objectives,
)

# Every module of this package is imported, and importing an objective's module registers it: a new objective is a
# new file here and nothing else.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Objective", "StepMetrics", "argument_classes", "make_objective", "objective_class", "objective_classes", "objective_names",
           "other_objectives_flags", "register_objective", "streaming_objectives"]
