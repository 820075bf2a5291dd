"""XLM-RoBERTa (Conneau et al., 2020): RoBERTa's encoder with a SentencePiece Unigram vocabulary, the multilingual
encoders' usual tokenizer; the same ``<s>``/``</s>`` specials and positions counted from ``pad_token_id + 1``."""

from __future__ import annotations

from transformers import XLMRobertaForMaskedLM

from ...data.tokenizer import ROBERTA_SPECIALS
from ..heads import PretrainingMaskedLM
from .base import Architecture, register_architecture


class TrainingXLMRobertaForMaskedLM(PretrainingMaskedLM, XLMRobertaForMaskedLM):
    """``XLMRobertaForMaskedLM`` with sparse prediction and document isolation; saves as the stock class."""

    def mlm_head(self):
        return self.lm_head

    def position_offset(self) -> int:
        return self.config.pad_token_id + 1


XLM_ROBERTA = register_architecture(Architecture(
    model_type="xlm-roberta", masked_lm=TrainingXLMRobertaForMaskedLM, tokenizer_type="unigram",
    special_tokens=ROBERTA_SPECIALS,
    token_ids=lambda tokenizer: {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id,
                                 "eos_token_id": tokenizer.sep_token_id},
    position_offset=lambda config: config.pad_token_id + 1,
))
