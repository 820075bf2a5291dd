"""The one way a training-time model becomes stock ``transformers`` folders.

A training model carries what the stock class lacks (sparse prediction, document isolation, SpanBERT's boundary
network, ELECTRA's generator beside its discriminator) and trains and checkpoints as itself, so a resume is exact.
What it *exports* it declares as :class:`ExportedPart` s: for each folder, the stock class, its config and where
its weights sit in the training model's state dict. :func:`export_model` writes them from a state dict (the one the
Trainer gathered from FSDP or DeepSpeed shards), each through the stock class's own ``save_pretrained``, so nothing
is rewritten after a save and no flag is toggled around one.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel

# A config field that the stock class does not have (ELECTRA's generator_size): left out of the exported config.
REMOVED = object()


@dataclass(frozen=True)
class ExportedPart:
    """One stock folder: ``model_class(config)`` with the training state dict's keys under ``prefix`` (the prefix
    removed), less those under ``leave_out`` (training-only modules), plus ``shared``: part key -> training key, for
    weights the part shares with another one (stored once in a checkpoint, in each exported folder)."""

    model_class: type[PreTrainedModel]
    config: PretrainedConfig
    folder: str = ""  # relative to the output folder
    prefix: str = ""
    leave_out: tuple[str, ...] = ()
    shared: Mapping[str, str] = field(default_factory=dict)
    generation_config: GenerationConfig | None = None
    write_files: Callable[[str], None] | None = None  # extra files for the folder (sentence-transformers')

    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix) and not key[len(self.prefix):].startswith(self.leave_out)

    def state_dict(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        own = {key[len(self.prefix):]: value for key, value in state.items() if self.owns(key)}
        own.update({key: state[source] for key, source in self.shared.items()})
        return own


def stock_class(model: PreTrainedModel) -> type[PreTrainedModel]:
    """The first ``transformers`` class ``model``'s class derives from (itself, for a stock model)."""
    return next(c for c in type(model).__mro__ if c.__module__.startswith("transformers."))


def stock_config(config: PretrainedConfig, changes: Mapping[str, Any]) -> PretrainedConfig:
    """A copy of ``config`` with ``changes`` applied (a value of :data:`REMOVED` deletes the field)."""
    config = copy.deepcopy(config)
    for key, value in changes.items():
        if value is REMOVED:
            if hasattr(config, key):
                delattr(config, key)
        else:
            setattr(config, key, value)
    return config


class ExportsStock:
    """Mixed into a training-time subclass of a stock class: it exports as that class, without the modules named in
    ``training_only_modules`` and with ``training_only_config`` (field -> stock value, or :data:`REMOVED`) applied
    to its config. A model that exports several folders overrides :meth:`exported_parts`."""

    training_only_modules: ClassVar[tuple[str, ...]] = ()
    training_only_config: ClassVar[Mapping[str, Any]] = {}

    def exported_parts(self) -> list[ExportedPart]:
        return [ExportedPart(
            stock_class(self), stock_config(self.config, self.training_only_config),
            leave_out=tuple(f"{name}." for name in self.training_only_modules),
            generation_config=copy.deepcopy(self.generation_config) if self.can_generate() else None,
        )]


def exported_parts(model: PreTrainedModel) -> list[ExportedPart]:
    """What ``model`` exports: its own parts, or (a stock model) itself."""
    if isinstance(model, ExportsStock):
        return model.exported_parts()
    return [ExportedPart(type(model), model.config)]


def exported_parameters(model: PreTrainedModel) -> int:
    """The parameters of the first exported folder's model (the model card's count), tied weights once."""
    part = exported_parts(model)[0]
    return sum(p.numel() for name, p in model.named_parameters() if part.owns(name))


def export_model(
    model: PreTrainedModel, output_dir: str, state_dict: Mapping[str, torch.Tensor] | None = None,
    is_main_process: bool = True,
) -> list[str]:
    """Write each of ``model``'s exported parts as a stock folder under ``output_dir``, from ``state_dict``
    (``model.state_dict()`` if None), and return the folders. The stock model is built on the meta device: it
    only names the class and the config for ``save_pretrained``, so exporting takes no second copy of the weights."""
    state = model.state_dict() if state_dict is None else state_dict
    folders = []
    for part in exported_parts(model):
        folder = os.path.join(output_dir, part.folder) if part.folder else output_dir
        with torch.device("meta"):
            stock = part.model_class(part.config)
        if part.generation_config is not None:
            stock.generation_config = part.generation_config
        stock.save_pretrained(folder, state_dict=part.state_dict(state), is_main_process=is_main_process)
        if is_main_process and part.write_files is not None:
            part.write_files(folder)
        folders.append(folder)
    return folders
