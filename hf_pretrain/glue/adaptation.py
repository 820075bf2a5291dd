"""Three ways to adapt a pretrained encoder to a task: full fine-tuning, a linear probe, LoRA.

- ``full``: every weight trains (the stock recipe).
- ``linear_probe``: the pretrained weights stay frozen; only what the checkpoint did not have trains, i.e. the task
  head (the classifier, and BERT's pooler when the checkpoint never trained one). It saves as the stock class.
- ``lora``: low-rank adapters on the attention projections (``peft``), with the task head trained in full. Saved
  twice: the adapter (``adapter/``, which ``peft`` loads over the pretrained checkpoint) and the merged model
  (which plain transformers loads).
"""

from __future__ import annotations

import os

from transformers import PreTrainedModel

from ..errors import HfPretrainError

ADAPTATIONS = ("full", "linear_probe", "lora")
# peft's defaults cover BERT, RoBERTa and ELECTRA (query, value); ModernBERT fuses them into one projection.
LORA_TARGETS = {"modernbert": ["Wqkv"]}


def head_modules(newly_initialized: list[str]) -> list[str]:
    """The top-level modules the checkpoint did not provide (``classifier``, ``bert.pooler``...): the task head."""
    return sorted({key.rsplit(".", 1)[0] for key in newly_initialized})


def freeze_all_but(model: PreTrainedModel, newly_initialized: list[str]) -> None:
    """A linear probe: only the parameters the checkpoint did not have train."""
    trainable = set(newly_initialized)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name in trainable


def lora_model(model: PreTrainedModel, newly_initialized: list[str], r: int, alpha: int, dropout: float,
               target_modules: list[str] | None):
    """``model`` with LoRA adapters on ``target_modules`` (the architecture's attention projections by default)
    and its task head trained in full (``modules_to_save``)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    model_type = model.config.model_type
    targets = target_modules or LORA_TARGETS.get(model_type) or PEFT_TARGETS.get(model_type)
    if not targets:
        raise HfPretrainError(f"--adaptation lora: no default target modules for {model_type}; pass "
                              "--lora_target_modules with the names of its attention projections")
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=targets, modules_to_save=head_modules(newly_initialized))
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # a target module the model does not have
        raise HfPretrainError(f"--lora_target_modules {' '.join(targets)}: {err}") from None


def save_adapted(model, output_dir: str) -> None:
    """Save a LoRA model as its adapter (``output_dir/adapter``, for peft) and merged into the stock class
    (``output_dir``, for plain transformers); any other model as itself."""
    if not hasattr(model, "merge_and_unload"):
        model.save_pretrained(output_dir)
        return
    model.save_pretrained(os.path.join(output_dir, "adapter"))
    model.merge_and_unload().save_pretrained(output_dir)
