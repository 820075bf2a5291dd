"""BERT (Devlin et al., 2019): WordPiece, ``[CLS] A [SEP] B [SEP]``, learned absolute positions from 0, and the one
architecture here with a next-sentence head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.functional import cross_entropy
from transformers import BertForMaskedLM, BertForPreTraining
from transformers.models.bert.modeling_bert import BertForPreTrainingOutput

from ..heads import MaskedLMHead, PretrainingForward, PretrainingMaskedLM, predict_masked
from .base import Architecture, register_architecture


class TrainingBertForMaskedLM(PretrainingMaskedLM, BertForMaskedLM):
    """``BertForMaskedLM`` with sparse prediction and document isolation (``document_ids``); saves as the stock
    class. With ``sparse_prediction`` the logits are ``(n_masked, vocab)``, at the positions where labels are set."""

    def mlm_head(self):
        return MaskedLMHead(self.cls.predictions.transform, self.cls.predictions.decoder)


@dataclass
class PretrainingBertOutput(BertForPreTrainingOutput):
    # As PretrainingMaskedLMOutput's: the MLM loss alone, detached, and the argmax where a fused loss kept no logits.
    mlm_loss: torch.Tensor | None = None
    mlm_predictions: torch.Tensor | None = None


class TrainingBertForPreTraining(PretrainingForward, BertForPreTraining):
    """``BertForPreTraining`` (MLM + NSP) with sparse prediction and document isolation; saves as the stock class.
    ``loss_weights`` (MLM, sentence pair) weigh the two losses (``--objective_weights``; the stock sum by default)."""

    loss_weights: tuple[float, float] = (1.0, 1.0)

    def mlm_head(self):  # BertPreTrainingHeads keeps the MLM head under the same name as BertOnlyMLMHead
        return TrainingBertForMaskedLM.mlm_head(self)

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
        next_sentence_label=None, document_ids=None, **kwargs,
    ) -> BertForPreTrainingOutput:
        outputs = self.encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss, predictions = predict_masked(
            self.mlm_head(), outputs.last_hidden_state, labels, self.sparse_prediction, fused=self.training,
        )
        relationship = self.cls.seq_relationship(outputs.pooler_output)
        mlm_loss = None if loss is None else loss.detach()
        if next_sentence_label is not None and loss is not None:
            mlm_weight, pair_weight = self.loss_weights
            loss = mlm_weight * loss + pair_weight * cross_entropy(relationship.float(), next_sentence_label.view(-1))
        elif next_sentence_label is None:
            loss = None  # as the stock class: the pretraining loss needs both labels
        return PretrainingBertOutput(loss=loss, prediction_logits=logits, seq_relationship_logits=relationship,
                                     mlm_loss=mlm_loss, mlm_predictions=predictions)


BERT = register_architecture(Architecture(
    model_type="bert", masked_lm=TrainingBertForMaskedLM, pretraining=TrainingBertForPreTraining,
))
