"""Train a BERT WordPiece tokenizer on a corpus with ``tokenizers``, or load one, as a transformers fast tokenizer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerBase

from ..errors import HfPretrainError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _batches(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 30522,
    do_lower_case: bool = True,
    min_frequency: int = 2,
    model_max_length: int = 512,
    show_progress: bool = False,
) -> BertTokenizer:
    """A BERT WordPiece tokenizer trained on ``texts``, with BERT's normalizer, pre-tokenizer and special tokens.

    ``tokenizers`` breaks ties between equally frequent merges in hash order, which differs between processes, so
    two trainings may disagree on a few tokens at the frequency cut-off. The recipes therefore train once, save
    the tokenizer, and reload it on resume and on every other process.
    """
    backend = Tokenizer(WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=show_progress,
    )
    backend.train_from_iterator(_batches(texts), trainer=trainer)
    # Rebuilding through BertTokenizer gives the standard post-processor ([CLS] A [SEP] B [SEP]) and a
    # tokenizer_config.json that plain transformers loads with AutoTokenizer.
    return BertTokenizer(
        vocab=canonical_vocab(backend.get_vocab()), do_lower_case=do_lower_case, model_max_length=model_max_length
    )


def canonical_vocab(vocab: dict[str, int]) -> dict[str, int]:
    """Renumber a WordPiece vocabulary deterministically: special tokens, then words, then ``##`` pieces, sorted.

    The trainer assigns its initial alphabet ids in hash order, which changes from run to run; WordPiece
    tokenization depends only on which tokens exist, so fixed ids make the tokenizer a function of the corpus.
    """
    rest = sorted((t for t in vocab if t not in SPECIAL_TOKENS), key=lambda t: (t.startswith("##"), t))
    return {token: i for i, token in enumerate([*SPECIAL_TOKENS, *rest])}


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer from a folder (or the Hub), with a clear error when it is not there."""
    if not os.path.isdir(name_or_path) and os.path.sep in name_or_path:
        raise HfPretrainError(f"--tokenizer_name {name_or_path}: no such directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as err:  # missing files, unreachable Hub, malformed JSON
        raise HfPretrainError(f"--tokenizer_name {name_or_path}: cannot load a tokenizer ({err})") from None
    missing = [name for name in ("pad_token", "mask_token", "cls_token", "sep_token") if getattr(tokenizer, name) is None]
    if missing:
        raise HfPretrainError(f"--tokenizer_name {name_or_path}: the tokenizer has no {', '.join(missing)}")
    return tokenizer
