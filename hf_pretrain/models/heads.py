"""Training-time BERT classes: the stock ones plus two additions that leave weights and checkpoints untouched.

*Sparse prediction* computes the vocabulary projection only at the masked positions (as Cramming, MosaicBERT and
ModernBERT do; ~15 % of the tokens, where the full projection costs a large share of a small BERT's step), and
*document isolation* lets several packed documents share a row while each attends only to itself.
"""

from __future__ import annotations

import torch
from torch.nn.functional import cross_entropy
from transformers import BertForMaskedLM, BertForPreTraining
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.bert.modeling_bert import BertForPreTrainingOutput

from ..constants import IGNORE_INDEX
from .attention import block_diagonal_attention_mask


def predict_masked(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor | None, sparse: bool):
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
    """Shared by the two training-time classes: the encoder pass, with document isolation, and the checkpoint's
    architecture name kept to the stock class, so a saved model is a plain ``transformers`` one."""

    # The losses are batch means: Trainer then averages them over gradient-accumulation steps itself.
    accepts_loss_kwargs = False
    sparse_prediction: bool = True

    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs):
        if document_ids is not None:
            attention_mask = block_diagonal_attention_mask(
                document_ids, attention_mask, self.config._attn_implementation
            )
        return self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            return_dict=True, **kwargs,
        )

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            stock = next(c for c in type(self).__mro__ if c.__module__.startswith("transformers."))
            self.config.architectures = [stock.__name__]
            self.config.save_pretrained(save_directory)


class TrainingBertForMaskedLM(PretrainingForward, BertForMaskedLM):
    """``BertForMaskedLM`` with sparse prediction and document isolation (``document_ids``); saves as the stock
    class. With ``sparse_prediction`` the logits are ``(n_masked, vocab)``, at the positions where labels are set."""

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
        document_ids=None, **kwargs,
    ) -> MaskedLMOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss = predict_masked(self.cls, outputs.last_hidden_state, labels, self.sparse_prediction)
        return MaskedLMOutput(loss=loss, logits=logits)


class TrainingBertForPreTraining(PretrainingForward, BertForPreTraining):
    """``BertForPreTraining`` (MLM + NSP) with sparse prediction and document isolation; saves as the stock class."""

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
        next_sentence_label=None, document_ids=None, **kwargs,
    ) -> BertForPreTrainingOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss = predict_masked(
            self.cls.predictions, outputs.last_hidden_state, labels, self.sparse_prediction
        )
        relationship = self.cls.seq_relationship(outputs.pooler_output)
        if next_sentence_label is not None and loss is not None:
            loss = loss + cross_entropy(relationship.float(), next_sentence_label.view(-1))
        elif next_sentence_label is None:
            loss = None  # as the stock class: the pretraining loss needs both labels
        return BertForPreTrainingOutput(loss=loss, prediction_logits=logits, seq_relationship_logits=relationship)


