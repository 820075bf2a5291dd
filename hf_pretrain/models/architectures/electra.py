"""ELECTRA (Clark et al., 2020): BERT's encoder with embeddings that may be narrower than the hidden states, trained
as a masked LM (the generator's class) or by replaced-token detection (:mod:`hf_pretrain.models.electra`)."""

from __future__ import annotations

from transformers import ElectraForMaskedLM

from ..electra import ElectraForReplacedTokenDetection
from ..heads import MaskedLMHead, PretrainingMaskedLM
from .base import Architecture, register_architecture


class TrainingElectraForMaskedLM(PretrainingMaskedLM, ElectraForMaskedLM):
    """``ElectraForMaskedLM`` with sparse prediction and document isolation; exports as the stock class."""

    def mlm_head(self):
        return MaskedLMHead(self.generator_predictions, self.generator_lm_head)


ELECTRA = register_architecture(Architecture(
    model_type="electra", masked_lm=TrainingElectraForMaskedLM,
    replaced_token_detection=ElectraForReplacedTokenDetection,
))
