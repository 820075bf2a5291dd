"""hf_pretrain: pretrain BERT-family models from raw text with the Hugging Face Trainer, then fine-tune them."""

from .arguments import DataArguments, GlueArguments, ModelArguments, PretrainingArguments
from .collators import DataCollatorForMaskedLM, pad_batch
from .config import parse_config
from .corpus import load_corpus, load_documents, read_documents, stdlib_docstrings
from .errors import HfPretrainError
from .glue import GLUE_TASKS, glue_metrics, load_glue, read_glue_tsv
from .masking import mask_dataset, mask_tokens, word_start_table
from .modeling import TrainingBertForMaskedLM, TrainingBertForPreTraining
from .sentence_pairs import build_nsp_pairs
from .sentences import split_sentences
from .pretraining_data import build_pretraining_dataset
from .sequences import pack_sequences, tokenize_documents
from .tokenizer import load_tokenizer, train_wordpiece_tokenizer

__version__ = "0.1.0"

__all__ = [
    "DataArguments",
    "DataCollatorForMaskedLM",
    "GLUE_TASKS",
    "GlueArguments",
    "HfPretrainError",
    "ModelArguments",
    "PretrainingArguments",
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
    "pack_sequences",
    "pad_batch",
    "parse_config",
    "read_documents",
    "read_glue_tsv",
    "split_sentences",
    "stdlib_docstrings",
    "tokenize_documents",
    "train_wordpiece_tokenizer",
    "word_start_table",
]
