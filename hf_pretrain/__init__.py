"""hf_pretrain: pretrain encoders from raw text with the Hugging Face Trainer, then fine-tune them.

The package's layers, each a subpackage, lowest first: ``data`` (reading, sentences, tokenizer, sequences, pairs),
``prepare`` (cleaning, deduplication, the preparation pipeline), ``models`` (training-time heads, loading checks),
``objectives`` (masking, collators, step metrics, one module per objective), ``hub`` (model cards, pushing),
``training`` (the Trainer glue and its callbacks) and ``glue`` (GLUE tasks and fine-tuning). A layer imports only
from the layers below it; ``tests/test_architecture.py`` checks it with import-linter (``.importlinter``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The public names and the module each lives in. They are imported when first used (PEP 562), so that a script
# that needs one layer (``hf-pretrain prepare``, a deduplication benchmark's worker) does not pay for importing
# torch, transformers' models and peft through the others: ``import hf_pretrain.prepare.dedup`` took 9.6 s.
_PUBLIC = {
    "build_nsp_pairs": ".data.pairs",
    "build_pretraining_dataset": ".training.data",
    "DataArguments": ".data.arguments",
    "DataCollatorForMaskedLM": ".objectives.collators",
    "ElectraForReplacedTokenDetection": ".models.electra",
    "glue_metrics": ".glue.tasks",
    "GLUE_TASKS": ".glue.tasks",
    "GlueArguments": ".glue.arguments",
    "HfPretrainError": ".errors",
    "load_corpus": ".data.corpus",
    "load_documents": ".data.corpus",
    "load_glue": ".glue.tasks",
    "load_tokenizer": ".data.tokenizer",
    "mask_dataset": ".objectives.masking",
    "mask_tokens": ".objectives.masking",
    "MaskingConfig": ".objectives.masking",
    "ModelArguments": ".models.arguments",
    "Objective": ".objectives",
    "objective_class": ".objectives",
    "objective_names": ".objectives",
    "pack_sequences": ".data.sequences",
    "pad_batch": ".objectives.collators",
    "parse_config": ".config",
    "PretrainingArguments": ".objectives.arguments",
    "PretrainingTrainer": ".training.trainer",
    "read_documents": ".data.corpus",
    "read_glue_tsv": ".glue.tasks",
    "register_objective": ".objectives",
    "split_sentences": ".data.sentences",
    "stdlib_docstrings": ".data.corpus",
    "tokenize_documents": ".data.sequences",
    "train_wordpiece_tokenizer": ".data.tokenizer",
    "TrainingBertForMaskedLM": ".models.architectures.bert",
    "TrainingBertForPreTraining": ".models.architectures.bert",
    "word_start_table": ".objectives.masking",
}

if TYPE_CHECKING:  # what static tools and IDEs see
    from .config import parse_config
    from .data.arguments import DataArguments
    from .data.corpus import load_corpus, load_documents, read_documents, stdlib_docstrings
    from .data.pairs import build_nsp_pairs
    from .data.sentences import split_sentences
    from .data.sequences import pack_sequences, tokenize_documents
    from .data.tokenizer import load_tokenizer, train_wordpiece_tokenizer
    from .errors import HfPretrainError
    from .glue.arguments import GlueArguments
    from .glue.tasks import GLUE_TASKS, glue_metrics, load_glue, read_glue_tsv
    from .models.arguments import ModelArguments
    from .models.architectures.bert import TrainingBertForMaskedLM, TrainingBertForPreTraining
    from .objectives import Objective, objective_class, objective_names, register_objective
    from .objectives.arguments import PretrainingArguments
    from .objectives.collators import DataCollatorForMaskedLM, pad_batch
    from .models.electra import ElectraForReplacedTokenDetection
    from .objectives.masking import MaskingConfig, mask_dataset, mask_tokens, word_start_table
    from .training.data import build_pretraining_dataset
    from .training.trainer import PretrainingTrainer


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'hf_pretrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__version__ = "0.1.0"

__all__ = [
    "DataArguments",
    "DataCollatorForMaskedLM",
    "ElectraForReplacedTokenDetection",
    "GLUE_TASKS",
    "GlueArguments",
    "HfPretrainError",
    "MaskingConfig",
    "ModelArguments",
    "Objective",
    "PretrainingArguments",
    "PretrainingTrainer",
    "TrainingBertForMaskedLM",
    "TrainingBertForPreTraining",
    "build_nsp_pairs",
    "build_pretraining_dataset",
    "glue_metrics",
    "load_corpus",
    "load_documents",
    "load_glue",
    "load_tokenizer",
    "mask_dataset",
    "mask_tokens",
    "objective_class",
    "objective_names",
    "pack_sequences",
    "pad_batch",
    "parse_config",
    "read_documents",
    "read_glue_tsv",
    "register_objective",
    "split_sentences",
    "stdlib_docstrings",
    "tokenize_documents",
    "train_wordpiece_tokenizer",
    "word_start_table",
]
