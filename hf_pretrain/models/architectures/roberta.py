"""RoBERTa (Liu et al., 2019): byte-level BPE with ``<s>``/``</s>``, no next-sentence head, and position ids that
count from ``pad_token_id + 1``."""

from __future__ import annotations

from transformers import RobertaForMaskedLM
from transformers.activations import gelu

from ...data.tokenizer import ROBERTA_SPECIALS
from ..heads import MaskedLMHead, PretrainingMaskedLM
from .base import Architecture, register_architecture


class TrainingRobertaForMaskedLM(PretrainingMaskedLM, RobertaForMaskedLM):
    """``RobertaForMaskedLM`` with sparse prediction and document isolation; saves as the stock class."""

    def mlm_head(self):
        head = self.lm_head  # RobertaLMHead's forward split at its decoder (test_architectures: the stock loss)
        return MaskedLMHead(lambda hidden: head.layer_norm(gelu(head.dense(hidden))), head.decoder)

    def position_offset(self) -> int:
        return self.config.pad_token_id + 1


ROBERTA = register_architecture(Architecture(
    model_type="roberta", masked_lm=TrainingRobertaForMaskedLM, tokenizer_type="bpe", special_tokens=ROBERTA_SPECIALS,
    token_ids=lambda tokenizer: {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id,
                                 "eos_token_id": tokenizer.sep_token_id},
    position_offset=lambda config: config.pad_token_id + 1,
))
