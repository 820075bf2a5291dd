"""Training-time model classes: the stock ones plus two additions that leave weights and checkpoints untouched.

*Sparse prediction* computes the vocabulary projection only at the masked positions (as Cramming, MosaicBERT and
ModernBERT do; 15-30 % of the tokens, where the full projection costs a large share of a small model's step), and
*document isolation* lets several packed documents share a row while each attends only to itself
(``document_ids``). Position ids count from 0 in every document; each architecture adds its own offset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch.nn.functional import cross_entropy
from transformers.modeling_outputs import MaskedLMOutput

from ..constants import IGNORE_INDEX
from .attention import document_attention_masks


def predict_masked(head: Callable, hidden: torch.Tensor, labels: torch.Tensor | None, sparse: bool):
    """The MLM head's logits and mean loss. ``sparse``: at the labelled positions only, ``(n_masked, vocab)``;
    otherwise at every position, ``(batch, seq, vocab)``. The loss is the same either way."""
    if sparse and labels is not None:
        masked = labels != IGNORE_INDEX
        logits = head(hidden[masked])
        return logits, cross_entropy(logits.float(), labels[masked])
    logits = head(hidden)
    loss = None if labels is None else cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1))
    return logits, loss


class PretrainingForward:
    """Mixed into a stock ``*ForMaskedLM`` / ``*ForPreTraining`` class: the encoder pass with document isolation,
    and checkpoints saved under the stock class's name, so a saved model is a plain ``transformers`` one.

    A subclass names its MLM head (``mlm_head``) and, where position ids do not count from 0, their offset.
    """

    # The losses are batch means: Trainer then averages them over gradient-accumulation steps itself.
    accepts_loss_kwargs = False
    sparse_prediction: bool = True
    # Config fields set only for training, written back to their stock values in saved checkpoints.
    training_only_config: dict = {}

    def mlm_head(self) -> Callable[[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def position_offset(self) -> int:
        return 0

    def document_masks(self, document_ids, attention_mask) -> dict[str, torch.Tensor]:
        dtype = self.get_input_embeddings().weight.dtype
        return document_attention_masks(self.config, document_ids, attention_mask, dtype)

    def encode(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, document_ids=None,
               **kwargs):
        """The base model's last hidden state, each packed document attending only to itself."""
        if document_ids is not None:
            attention_mask = self.document_masks(document_ids, attention_mask)["full_attention"]
        if position_ids is not None:
            position_ids = position_ids + self.position_offset()
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        base = getattr(self, self.base_model_prefix)
        return base(input_ids, attention_mask=attention_mask, position_ids=position_ids, return_dict=True, **kwargs)

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            stock = next(c for c in type(self).__mro__ if c.__module__.startswith("transformers."))
            saved = self.config.__class__.from_pretrained(save_directory)
            saved.architectures = [stock.__name__]
            for key, value in self.training_only_config.items():
                setattr(saved, key, value)
            saved.save_pretrained(save_directory)


class PretrainingMaskedLM(PretrainingForward):
    """The forward pass of a training-time ``*ForMaskedLM``: encode, then the head at the masked positions."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                document_ids=None, **kwargs):
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss = predict_masked(self.mlm_head(), hidden.last_hidden_state, labels, self.sparse_prediction)
        return MaskedLMOutput(loss=loss, logits=logits)


class TrainingOnlyModules:
    """Mixed into a training-time class that adds modules the stock class does not have (SpanBERT's boundary
    network, the token-matching head): training checkpoints keep them, so a resume is exact; with ``export_parts``
    set, ``save_pretrained`` writes the stock class's weights alone, the folder a plain ``transformers`` loads."""

    training_only_modules: ClassVar[tuple[str, ...]] = ()
    export_parts = False

    def training_only_parameters(self) -> int:
        return sum(p.numel() for name in self.training_only_modules for p in getattr(self, name).parameters())

    def save_pretrained(self, save_directory, *args, state_dict=None, is_main_process: bool = True, **kwargs):
        if self.export_parts:
            state = state_dict if state_dict is not None else self.state_dict()
            prefixes = tuple(f"{name}." for name in self.training_only_modules)
            state_dict = {k: v for k, v in state.items() if not k.startswith(prefixes)}
        super().save_pretrained(save_directory, *args, state_dict=state_dict, is_main_process=is_main_process,
                                **kwargs)


_COMBINED: dict[tuple[type, type], type] = {}


def with_training_modules(mixin: type[TrainingOnlyModules], masked_lm: type) -> type:
    """``masked_lm`` (an architecture's training-time masked-LM class) with ``mixin``'s training-only modules and
    forward pass: ``SpanBoundaryTraining`` + ``TrainingBertForMaskedLM`` is ``SpanBoundaryTrainingBertForMaskedLM``."""
    key = (mixin, masked_lm)
    if key not in _COMBINED:
        _COMBINED[key] = type(mixin.__name__.removesuffix("Training") + masked_lm.__name__, (mixin, masked_lm), {})
    return _COMBINED[key]
