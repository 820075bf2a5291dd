"""Causal LM (GPT) and prefix LM (GLM, UniLM, T5's prefix LM) on a decoder: ``--objective clm`` and
``--objective prefix_lm``, on any ``AutoModelForCausalLM`` architecture (Llama by default), saved as its stock
class so that plain ``generate()`` works on the result.

``clm`` trains on packed rows of documents, isolated from each other with ``--isolate_documents`` (a causal
block-diagonal mask, position ids restarting per document). ``prefix_lm`` draws a prefix length per row: the prefix
is read in both directions and only what follows it is predicted.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data.sequences import pack_sequences
from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.causal import build_causal_model
from .base import Objective, StepMetrics
from .collators import DataCollatorForCausalLM
from .metrics import CausalLMMetrics
from .registry import register_objective


@register_objective
class CausalLanguageModeling(Objective):
    """Next-token prediction on packed rows."""

    name = "clm"
    title = "causal LM"
    pipeline_tag = "text-generation"
    card_tags = ("text-generation", "pretraining")
    default_model_type = "llama"
    head = "causal-LM"
    prefix_lm = False
    streams = True

    def __init__(self, args, seed, extra=None) -> None:
        if args.masking != "dynamic" or args.masking_unit != "token":
            raise HfPretrainError(f"--objective {self.name} masks nothing: drop --masking and --masking_unit")
        super().__init__(args, seed, extra)

    def build_rows(
        self, tokenized: Dataset, tokenizer: PreTrainedTokenizerBase, *, split: str, max_seq_length: int,
        source: str, num_proc: int | None = None, short_seq_probability: float = 0.1,
    ) -> Dataset:
        return pack_sequences(
            tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length, self.document_stream
        )

    @property
    def document_stream(self) -> bool:
        # A decoder's rows are cut from the stream of [CLS] document [SEP], as run_clm.py's group_texts cuts them, so a
        # row starts wherever the cut falls, as text to continue does. Rows that each begin with [CLS] (MLM's full
        # sentences) taught Llama to lean on a [CLS] in first place: measured, windows that start mid-document then
        # scored 0.4-0.5 nats above the training loss (`make bench-clm`, 2026-12-06). The collator decides isolation.
        return not self.prefix_lm  # prefix_lm refuses --isolate_documents: its rows stay full sentences

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForCausalLM:
        return DataCollatorForCausalLM(tokenizer, isolate_documents=self.args.isolate_documents,
                                       prefix_lm=self.prefix_lm, seed=self.seed)

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        return build_causal_model(model_args, tokenizer, max_seq_length, self.default_model_type)

    def step_metrics(self) -> StepMetrics:
        return CausalLMMetrics()

    def card_rows(self) -> dict[str, Any]:
        if self.args.isolate_documents:
            packing = "documents isolated (causal block-diagonal attention, positions restart per document)"
        elif self.document_stream:
            packing = "rows cut from the stream of [CLS] document [SEP] (attention across the documents of a row)"
        else:
            packing = "full sentences (attention across the documents of a row)"
        return {"packing": packing}


@register_objective
class PrefixLanguageModeling(CausalLanguageModeling):
    """A random-length prefix read bidirectionally, the rest predicted left to right."""

    name = "prefix_lm"
    title = "prefix LM"
    prefix_lm = True

    def __init__(self, args, seed, extra=None) -> None:
        if args.isolate_documents:
            raise HfPretrainError("--objective prefix_lm draws one prefix per row of full sentences: drop "
                                  "--isolate_documents")
        super().__init__(args, seed, extra)

    def card_rows(self) -> dict[str, Any]:
        return {"prefix": "uniform in [1, n - 1] tokens of each n-token row, attended bidirectionally; loss on the "
                          "rest only", **super().card_rows()}
