"""ModernBERT (Warner et al., 2024): pre-norm, GeGLU, rotary positions, no biases, local and global attention
layers. Its own ``sparse_prediction`` config runs the head at the masked positions only. Trained as a masked LM, or
by ELECTRA's replaced-token detection with a shallower generator (:class:`ModernBertForReplacedTokenDetection`)."""

from __future__ import annotations

from torch import nn
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertForTokenClassification, ModernBertModel
from transformers.models.modernbert.modeling_modernbert import ModernBertPredictionHead

from ..attention import document_attention_masks
from ..electra import ReplacedTokenTraining
from ..export import ExportedPart, stock_config
from ..heads import MaskedLMHead, PretrainingForward, PretrainingMaskedLMOutput, predict_masked
from .base import Architecture, register_architecture


class TrainingModernBertForMaskedLM(PretrainingForward, ModernBertForMaskedLM):
    """``ModernBertForMaskedLM`` with document isolation: packed documents get one mask per layer type (global, and
    local within its window), both keeping documents apart. Sparse prediction is the stock class's own; saved
    checkpoints carry its stock setting (off), so inference with labels gives full logits as usual."""

    training_only_config = {"sparse_prediction": False}

    def mlm_head(self):
        return MaskedLMHead(self.head, self.decoder)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, document_ids=None,
                **kwargs):
        if document_ids is not None:  # a mask per layer type, which ModernBertModel takes as it is
            attention_mask = self.document_masks(document_ids, attention_mask)
        if labels is not None and self.training and self.sparse_prediction:
            # The stock forward's sparse prediction, with the loss fused with the decoder (:mod:`..fused_loss`).
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                **kwargs).last_hidden_state
            logits, loss, predictions = predict_masked(self.mlm_head(), hidden, labels, sparse=True, fused=True)
            return PretrainingMaskedLMOutput(loss=loss, logits=logits, mlm_loss=loss.detach(),
                                             mlm_predictions=predictions)
        outputs = super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                  labels=labels, **kwargs)
        if outputs.loss is None:
            return outputs
        # The MLM loss alone for the step metrics (the stock loss is the mean over the masked tokens: this class
        # takes no loss kwargs), which would otherwise compute it again over the logits.
        return PretrainingMaskedLMOutput(**outputs, mlm_loss=outputs.loss.detach())


# The discriminator's config fields a generator does not take: its training-only fields and its one label.
NOT_THE_GENERATORS = ("architectures", "generator_size", "discriminator_weight", "token_match", "model_type",
                      "transformers_version",
                      "id2label", "label2id", "num_labels")


def shallow_generator_config(config: ModernBertConfig, generator_size: float) -> ModernBertConfig:
    """A ModernBERT generator's config: the discriminator's width and embeddings (so they can be shared: stock
    ModernBERT has no projection between a narrow embedding and wider layers, which ELECTRA's narrow generators
    rely on), ``generator_size`` of its depth (at least one layer), its first layers' attention types, its
    attention implementation."""
    layers = max(1, round(config.num_hidden_layers * generator_size))
    values = {k: v for k, v in config.to_dict().items() if k not in NOT_THE_GENERATORS}
    values.update(num_hidden_layers=layers, layer_types=list(config.layer_types[:layers]))
    generator = ModernBertConfig(**values)
    generator._attn_implementation = config._attn_implementation  # not in to_dict(): --attn_implementation
    return generator


class ModernBertForReplacedTokenDetection(ReplacedTokenTraining, ModernBertForTokenClassification):
    """ELECTRA's replaced-token detection on a ModernBERT backbone: the discriminator is a one-logit
    ``ModernBertForTokenClassification`` (its ``head`` and ``classifier`` are ELECTRA's discriminator head), the
    ``generator`` a shallower ``ModernBertForMaskedLM`` of the same width that shares its token embeddings and their
    norm (declared in ``_tied_weights_keys``: tied at init and on load, stored once).

    transformers has no ELECTRA head for ModernBERT, so the export is three stock folders: the encoder as
    ``ModernBertModel`` (what GLUE fine-tuning and ``AutoModel`` load, with no head to collide with a task's), the
    discriminator as ``ModernBertForTokenClassification`` in ``discriminator/`` (its one label, ``replaced``), and the
    generator as ``ModernBertForMaskedLM`` in ``generator/``.
    """

    _tied_weights_keys = {
        "generator.model.embeddings.tok_embeddings.weight": "model.embeddings.tok_embeddings.weight",
        "generator.model.embeddings.norm.weight": "model.embeddings.norm.weight",
        "generator.decoder.weight": "model.embeddings.tok_embeddings.weight",
    }
    SHARED = ("model.embeddings.tok_embeddings.weight", "model.embeddings.norm.weight")

    def __init__(self, config: ModernBertConfig) -> None:
        config.num_labels = 1
        config.id2label, config.label2id = {0: "replaced"}, {"replaced": 0}
        # As ELECTRA's: the stock __init__ would tie weights before the generator exists.
        super(ModernBertForTokenClassification, self).__init__(config)
        self.num_labels = 1
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.generator = ModernBertForMaskedLM(shallow_generator_config(config, config.generator_size))
        self.init_training_state(config)
        self.post_init()

    def encoder_inputs(self, attention_mask, token_type_ids, position_ids, document_ids):
        if document_ids is not None:  # one mask per layer type; the generator's layers are the first ones
            attention_mask = document_attention_masks(
                self.config, document_ids, attention_mask, self.get_input_embeddings().weight.dtype
            )
        return dict(attention_mask=attention_mask, position_ids=position_ids)

    def generator_logits(self, input_ids, labels, encoder_inputs):
        generator = self.generator
        hidden = generator.model(input_ids, **encoder_inputs).last_hidden_state
        logits, loss, _ = predict_masked(lambda h: generator.decoder(generator.head(h)), hidden, labels,
                                         self.sparse_prediction)  # unfused: the sampling reads the logits
        return logits, loss

    def discriminator_hidden(self, input_ids, encoder_inputs):
        return self.model(input_ids, **encoder_inputs).last_hidden_state

    def discriminator_head(self, hidden):
        return self.classifier(self.drop(self.head(hidden))).squeeze(-1)

    def exported_parts(self) -> list[ExportedPart]:
        discriminator = stock_config(self.config, self.training_only_config)
        return [
            ExportedPart(ModernBertModel, stock_config(discriminator, {"num_labels": 2}), prefix="model."),
            ExportedPart(ModernBertForTokenClassification, discriminator, folder="discriminator",
                         leave_out=("generator.", "match_head.")),
            ExportedPart(ModernBertForMaskedLM, self.generator.config, folder="generator", prefix="generator.",
                         shared={key: key for key in self.SHARED}),
        ]


MODERNBERT = register_architecture(Architecture(
    model_type="modernbert", masked_lm=TrainingModernBertForMaskedLM, tokenizer_type="bpe",
    replaced_token_detection=ModernBertForReplacedTokenDetection,
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
