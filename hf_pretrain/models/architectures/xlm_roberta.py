"""XLM-RoBERTa (Conneau et al., 2020): RoBERTa's encoder with a SentencePiece Unigram vocabulary, the multilingual
encoders' usual tokenizer; the same ``<s>``/``</s>`` specials and positions counted from ``pad_token_id + 1``."""

from __future__ import annotations

import dataclasses

from transformers import XLMRobertaForMaskedLM

from ..heads import PretrainingMaskedLM
from .base import register_architecture
from .roberta import ROBERTA, TrainingRobertaForMaskedLM


class TrainingXLMRobertaForMaskedLM(PretrainingMaskedLM, XLMRobertaForMaskedLM):
    """``XLMRobertaForMaskedLM`` with sparse prediction and document isolation; saves as the stock class."""

    mlm_head = TrainingRobertaForMaskedLM.mlm_head  # the same modules under the same names as RoBERTa's
    position_offset = TrainingRobertaForMaskedLM.position_offset


XLM_ROBERTA = register_architecture(dataclasses.replace(
    ROBERTA, model_type="xlm-roberta", masked_lm=TrainingXLMRobertaForMaskedLM, tokenizer_type="unigram"
))
