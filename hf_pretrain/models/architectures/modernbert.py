"""ModernBERT (Warner et al., 2024): pre-norm, GeGLU, rotary positions, no biases, local and global attention
layers. Its own ``sparse_prediction`` config runs the head at the masked positions only."""

from __future__ import annotations

from transformers import ModernBertForMaskedLM

from ..heads import PretrainingForward
from .base import Architecture, register_architecture


class TrainingModernBertForMaskedLM(PretrainingForward, ModernBertForMaskedLM):
    """``ModernBertForMaskedLM`` with document isolation: packed documents get one mask per layer type (global, and
    local within its window), both keeping documents apart. Sparse prediction is the stock class's own; saved
    checkpoints carry its stock setting (off), so inference with labels gives full logits as usual."""

    training_only_config = {"sparse_prediction": False}

    def mlm_head(self):  # for objectives that run the head themselves (SBO, token matching)
        return lambda hidden: self.decoder(self.head(hidden))

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, document_ids=None,
                **kwargs):
        if document_ids is not None:  # a mask per layer type, which ModernBertModel takes as it is
            attention_mask = self.document_masks(document_ids, attention_mask)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               labels=labels, **kwargs)


MODERNBERT = register_architecture(Architecture(
    model_type="modernbert", masked_lm=TrainingModernBertForMaskedLM, tokenizer_type="bpe",
    dropout_fields={"hidden_dropout_prob": ("embedding_dropout", "mlp_dropout"),
                    "attention_probs_dropout_prob": ("attention_dropout",)},
    token_ids=lambda tokenizer: {
        "pad_token_id": tokenizer.pad_token_id, "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id, "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    },
    # Every third layer attends globally, the others within a 128-token window (the paper's layout).
    construction_fields={"global_attn_every_n_layers": 3},
))
