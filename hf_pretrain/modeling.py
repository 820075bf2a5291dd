"""The BERT model to pretrain: fresh from the architecture flags, or continued from a checkpoint.

Training runs the stock BERT classes with two additions that leave their weights and checkpoints untouched:
*sparse prediction* computes the vocabulary projection only at the masked positions (as Cramming, MosaicBERT and
ModernBERT do; ~15 % of the tokens, where the full projection costs a large share of a small BERT's step), and
*document isolation* lets several packed documents share a row while each attends only to itself.
"""

from __future__ import annotations

import os

import torch
from torch.nn.functional import cross_entropy
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from transformers.models.bert.modeling_bert import BertForPreTrainingOutput
from transformers.modeling_outputs import MaskedLMOutput

from .arguments import ModelArguments
from .errors import HfPretrainError
from .masking import IGNORE_INDEX


def block_diagonal_attention_mask(
    document_ids: torch.Tensor, attention_mask: torch.Tensor | None, attn_implementation: str
) -> torch.Tensor:
    """A ``(batch, 1, seq, seq)`` mask letting each token attend only to tokens of its own document (and never to
    padding), in the form the attention implementation takes: booleans for SDPA, an additive float mask for eager.
    """
    allowed = document_ids[:, :, None] == document_ids[:, None, :]
    if attention_mask is not None:
        allowed &= attention_mask[:, None, :].bool()
    allowed = allowed[:, None]
    if attn_implementation == "sdpa":
        return allowed
    if attn_implementation == "eager":
        return torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)
    raise HfPretrainError(
        f"--isolate_documents works with the 'sdpa' and 'eager' attention implementations, not "
        f"'{attn_implementation}'"
    )


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


class _PretrainingForward:
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


class TrainingBertForMaskedLM(_PretrainingForward, BertForMaskedLM):
    """``BertForMaskedLM`` with sparse prediction and document isolation (``document_ids``); saves as the stock
    class. With ``sparse_prediction`` the logits are ``(n_masked, vocab)``, at the positions where labels are set."""

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
        document_ids=None, **kwargs,
    ) -> MaskedLMOutput:
        outputs = self._encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss = predict_masked(self.cls, outputs.last_hidden_state, labels, self.sparse_prediction)
        return MaskedLMOutput(loss=loss, logits=logits)


class TrainingBertForPreTraining(_PretrainingForward, BertForPreTraining):
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


def checkpoint_error(path: str, err: Exception, use_safetensors: bool) -> HfPretrainError:
    """Why ``--model_name_or_path`` did not load, in one line, with the way out when only pickled weights exist."""
    hint = ""
    if use_safetensors and os.path.isfile(os.path.join(path, "pytorch_model.bin")):
        hint = "; it has pickled weights only (pytorch_model.bin): pass --use_safetensors false if you trust it"
    return HfPretrainError(f"--model_name_or_path {path}: cannot load it ({str(err).splitlines()[0]}){hint}")


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, where: str) -> None:
    """A tokenizer whose ids run past the model's embedding table would crash deep inside torch: refuse it now."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise HfPretrainError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
            f"{embeddings}; use the tokenizer saved with the checkpoint"
        )


def build_pretraining_model(
    args: ModelArguments,
    tokenizer: PreTrainedTokenizerBase,
    with_nsp: bool,
    max_seq_length: int,
    sparse_prediction: bool = True,
    isolate_documents: bool = False,
) -> PreTrainedModel:
    """BERT with MLM + NSP heads or the MLM head alone, as a training-time class (see the module's docstring).
    Checkpoints of other architectures load through the Auto classes, without sparse prediction."""
    training_class = TrainingBertForPreTraining if with_nsp else TrainingBertForMaskedLM
    if args.model_name_or_path:
        try:
            config = AutoConfig.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
            if config.model_type == "bert":
                model = training_class.from_pretrained(args.model_name_or_path, use_safetensors=args.use_safetensors)
            else:
                auto = AutoModelForPreTraining if with_nsp else AutoModelForMaskedLM
                model = auto.from_pretrained(
                    args.model_name_or_path, use_safetensors=args.use_safetensors,
                    trust_remote_code=args.trust_remote_code,
                )
        except (OSError, ValueError) as err:
            raise checkpoint_error(args.model_name_or_path, err, args.use_safetensors) from None
        check_vocabulary(model, tokenizer, f"--model_name_or_path {args.model_name_or_path}")
    else:
        if max_seq_length > args.max_position_embeddings:
            raise HfPretrainError(
                f"--max_seq_length {max_seq_length} exceeds --max_position_embeddings {args.max_position_embeddings}"
            )
        model = training_class(BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=args.hidden_size,
            num_hidden_layers=args.num_hidden_layers,
            num_attention_heads=args.num_attention_heads,
            intermediate_size=args.intermediate_size,
            hidden_dropout_prob=args.hidden_dropout_prob,
            attention_probs_dropout_prob=args.attention_probs_dropout_prob,
            max_position_embeddings=args.max_position_embeddings,
            type_vocab_size=2,
            pad_token_id=tokenizer.pad_token_id,
        ))
    if isinstance(model, _PretrainingForward):
        model.sparse_prediction = sparse_prediction
    elif isolate_documents:
        raise HfPretrainError(
            f"--isolate_documents needs a BERT model; --model_name_or_path is a {model.config.model_type}"
        )
    return model
