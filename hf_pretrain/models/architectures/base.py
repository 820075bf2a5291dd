"""What hf_pretrain needs to know about an encoder architecture, and the registry of those it trains with its speed
features. A new architecture is one module in this package that registers an :class:`Architecture`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from ...data.tokenizer import BERT_SPECIALS, SpecialTokens


@dataclass(frozen=True)
class Architecture:
    """A transformers model type as hf_pretrain trains it.

    The training-time classes (sparse prediction and document isolation on top of the stock ones; each exports as
    its stock class), None where the architecture has no such head: ``masked_lm``, ``pretraining`` (MLM and
    next-sentence prediction), ``causal_lm`` (a decoder's) and ``replaced_token_detection`` (ELECTRA's generator and
    discriminator). ``dropout_fields`` maps the ``--hidden_dropout_prob`` and ``--attention_probs_dropout_prob``
    flags to the config's own names. ``token_ids`` gives the config fields a tokenizer decides (padding, specials).
    ``position_offset`` is the first position id of a sequence (RoBERTa counts from ``pad_token_id + 1``).
    ``construction_fields`` are config arguments that ``to_dict`` does not show (ModernBERT turns
    ``global_attn_every_n_layers`` into ``layer_types``), with their defaults.
    """

    model_type: str
    masked_lm: type[PreTrainedModel] | None = None
    pretraining: type[PreTrainedModel] | None = None
    causal_lm: type[PreTrainedModel] | None = None
    replaced_token_detection: type[PreTrainedModel] | None = None
    tokenizer_type: str = "wordpiece"
    special_tokens: SpecialTokens = BERT_SPECIALS
    dropout_fields: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "hidden_dropout_prob": ("hidden_dropout_prob",),
        "attention_probs_dropout_prob": ("attention_probs_dropout_prob",),
    })
    token_ids: Callable[[PreTrainedTokenizerBase], dict[str, int]] = lambda tokenizer: {
        "pad_token_id": tokenizer.pad_token_id
    }
    position_offset: Callable[[PretrainedConfig], int] = lambda config: 0
    # Config arguments taken at construction only (not in to_dict), with defaults: --config_overrides may set them.
    construction_fields: dict[str, object] = field(default_factory=dict)


_ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(architecture: Architecture) -> Architecture:
    """Make ``architecture`` the way ``--model_type architecture.model_type`` is trained."""
    _ARCHITECTURES[architecture.model_type] = architecture
    return architecture


def architecture_for(model_type: str) -> Architecture | None:
    """The registered architecture of ``model_type``, or None (then the stock Auto classes train it, without
    sparse prediction or document isolation)."""
    return _ARCHITECTURES.get(model_type)


def architecture_names(head: str = "masked_lm") -> list[str]:
    """The registered model types that have a training-time class for ``head`` (a field of :class:`Architecture`)."""
    return [name for name, architecture in _ARCHITECTURES.items() if getattr(architecture, head) is not None]
