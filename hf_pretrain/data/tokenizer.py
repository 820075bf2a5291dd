"""Train a tokenizer on a corpus with ``tokenizers`` (WordPiece as BERT, byte-level BPE as RoBERTa and ModernBERT,
Unigram as SentencePiece models), or load one, as a transformers fast tokenizer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, Unigram, WordPiece
from tokenizers.trainers import BpeTrainer, UnigramTrainer, WordPieceTrainer
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ..errors import HfPretrainError
from ..runtime.hub_access import is_hub_name, require_hub

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_TYPES = ("wordpiece", "bpe", "unigram")


@dataclass(frozen=True)
class SpecialTokens:
    """An architecture's special tokens, in the order they take the first ids, and how pairs are laid out."""

    cls: str
    sep: str
    pad: str
    mask: str
    unk: str
    order: tuple[str, ...]
    # RoBERTa separates a pair with two separators (<s> A </s></s> B </s>); BERT with one ([CLS] A [SEP] B [SEP]).
    double_separator: bool = False

    def template(self, ids: dict[str, int]) -> processors.TemplateProcessing:
        pair_middle = f"{self.sep} {self.sep}:1" if self.double_separator else self.sep
        return processors.TemplateProcessing(
            single=f"{self.cls} $A {self.sep}",
            pair=f"{self.cls} $A {pair_middle} $B:1 {self.sep}:1",
            special_tokens=[(self.cls, ids[self.cls]), (self.sep, ids[self.sep])],
        )


BERT_SPECIALS = SpecialTokens("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", tuple(SPECIAL_TOKENS))
ROBERTA_SPECIALS = SpecialTokens(
    "<s>", "</s>", "<pad>", "<mask>", "<unk>", ("<s>", "<pad>", "</s>", "<unk>", "<mask>"), double_separator=True
)


def _batches(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _wordpiece_vocab(
    backend: Tokenizer, texts: Iterable[str], vocab_size: int, min_frequency: int, specials: list[str],
    show_progress: bool,
) -> dict[str, int]:
    """The WordPiece vocabulary ``backend``'s normalizer and pre-tokenizer give on ``texts``, the same in every process.

    ``tokenizers`` numbers each ``##c`` continuation piece when it first meets it while iterating a hash map, whose
    order changes from process to process, and breaks ties between equally frequent merges by those numbers: one
    training in four gave another vocabulary. A first, cheap pass (a vocabulary smaller than the alphabet: words
    counted, no merges) finds every ``##c``; the real pass registers them up front, sorted, so every tie is broken
    the same way. ``backend`` itself is left untrained; ``texts`` is read twice (an iterator is listed first).
    """
    if isinstance(texts, Iterator):
        texts = list(texts)

    def train(size: int, continuations: list[str]) -> dict[str, int]:
        copy = Tokenizer.from_str(backend.to_str())
        trainer = WordPieceTrainer(
            vocab_size=size, min_frequency=min_frequency, special_tokens=specials + continuations,
            continuing_subword_prefix="##", show_progress=show_progress,
        )
        copy.train_from_iterator(_batches(texts), trainer=trainer)
        return copy.get_vocab()

    alphabet = train(1, [])
    return train(vocab_size, sorted(t for t in alphabet if t.startswith("##") and len(t) == 3))


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 30522,
    do_lower_case: bool = True,
    min_frequency: int = 2,
    model_max_length: int = 512,
    show_progress: bool = False,
) -> BertTokenizer:
    """A BERT WordPiece tokenizer trained on ``texts``, with BERT's normalizer, pre-tokenizer and special tokens.

    Deterministic (:func:`_wordpiece_vocab`): the same texts give the same vocabulary in every process.
    """
    backend = Tokenizer(WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = _wordpiece_vocab(backend, texts, vocab_size, min_frequency, SPECIAL_TOKENS, show_progress)
    # Rebuilding through BertTokenizer gives the standard post-processor ([CLS] A [SEP] B [SEP]) and a
    # tokenizer_config.json that plain transformers loads with AutoTokenizer.
    return BertTokenizer(
        vocab=canonical_vocab(vocab), do_lower_case=do_lower_case, model_max_length=model_max_length
    )


def train_tokenizer(
    texts: Iterable[str],
    tokenizer_type: str = "wordpiece",
    special_tokens: SpecialTokens = BERT_SPECIALS,
    vocab_size: int = 30522,
    do_lower_case: bool = True,
    min_frequency: int = 2,
    model_max_length: int = 512,
    show_progress: bool = False,
) -> PreTrainedTokenizerBase:
    """A tokenizer of ``tokenizer_type`` trained on ``texts``, with ``special_tokens`` at the first ids.

    - ``wordpiece``: BERT's normalizer and pre-tokenizer, ``##`` continuations;
    - ``bpe``: byte-level BPE (GPT-2, RoBERTa, ModernBERT): every byte is in the alphabet, so nothing is unknown, and
      each word, the first of a text included, starts with ``Ġ`` (what whole-word masking reads);
    - ``unigram``: SentencePiece's Unigram model with ``▁`` marking word starts.
    """
    if tokenizer_type not in TOKENIZER_TYPES:
        raise HfPretrainError(f"--tokenizer_type must be one of {', '.join(TOKENIZER_TYPES)}, not '{tokenizer_type}'")
    if tokenizer_type == "wordpiece" and special_tokens == BERT_SPECIALS:
        return train_wordpiece_tokenizer(texts, vocab_size, do_lower_case, min_frequency, model_max_length,
                                         show_progress)
    specials = list(special_tokens.order)
    lowercase = [normalizers.Lowercase()] if do_lower_case else []
    if tokenizer_type == "bpe":
        backend = Tokenizer(BPE())
        backend.normalizer = normalizers.Sequence([normalizers.NFC(), *lowercase])
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        backend.decoder = decoders.ByteLevel()
        trainer = BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=show_progress)
    elif tokenizer_type == "unigram":
        backend = Tokenizer(Unigram())
        backend.normalizer = normalizers.Sequence([normalizers.NFKC(), *lowercase])
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=special_tokens.unk,
                                 show_progress=show_progress)
    else:
        backend = Tokenizer(WordPiece(unk_token=special_tokens.unk))
        backend.normalizer = normalizers.BertNormalizer(lowercase=do_lower_case, strip_accents=None)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece()
        vocab = _wordpiece_vocab(backend, texts, vocab_size, min_frequency, specials, show_progress)
        backend.model = WordPiece(vocab=vocab, unk_token=special_tokens.unk, continuing_subword_prefix="##")
        backend.add_special_tokens(specials)
    if tokenizer_type != "wordpiece":  # (WordPiece was trained above, in two passes)
        backend.train_from_iterator(_batches(texts), trainer=trainer)
    ids = {token: backend.token_to_id(token) for token in specials}
    backend.post_processor = special_tokens.template(ids)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        cls_token=special_tokens.cls, sep_token=special_tokens.sep, pad_token=special_tokens.pad,
        unk_token=special_tokens.unk, bos_token=special_tokens.cls, eos_token=special_tokens.sep,
        # RoBERTa's <mask> takes the space before it, as the words it stands for carry theirs.
        mask_token=AddedToken(special_tokens.mask, lstrip=tokenizer_type == "bpe", normalized=False),
        model_max_length=model_max_length,
    )


def canonical_vocab(vocab: dict[str, int]) -> dict[str, int]:
    """Renumber a WordPiece vocabulary deterministically: special tokens, then words, then ``##`` pieces, sorted.

    The trainer assigns its initial alphabet ids in hash order, which changes from run to run; WordPiece
    tokenization depends only on which tokens exist, so fixed ids make the tokenizer a function of the corpus.
    """
    rest = sorted((t for t in vocab if t not in SPECIAL_TOKENS), key=lambda t: (t.startswith("##"), t))
    return {token: i for i, token in enumerate([*SPECIAL_TOKENS, *rest])}


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def load_tokenizer(
    name_or_path: str, trust_remote_code: bool = False, flag: str = "--tokenizer_name",
    advice: str = "save the tokenizer with the checkpoint or pass --tokenizer_name",
) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer from a folder (or the Hub), with a clear error naming ``flag`` when it is not there
    (and ``advice``, what the caller's user can do about a folder without one). A folder without any tokenizer
    file is refused: transformers would build a near-empty tokenizer from the config alone, and every word would
    become [UNK]."""
    if not os.path.isdir(name_or_path) and not is_hub_name(name_or_path):
        raise HfPretrainError(f"{flag} {name_or_path}: no such directory")
    if os.path.isdir(name_or_path) and not any(os.path.isfile(os.path.join(name_or_path, f)) for f in TOKENIZER_FILES):
        raise HfPretrainError(
            f"{flag} {name_or_path}: the folder holds no tokenizer ({', '.join(TOKENIZER_FILES[:3])}, ...); {advice}"
        )
    require_hub(f"{flag} {name_or_path}", "pass a folder with a tokenizer", name=name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as err:  # missing files, unreachable Hub, malformed JSON
        raise HfPretrainError(f"{flag} {name_or_path}: cannot load a tokenizer ({err})") from None
    missing = [name for name in ("pad_token", "mask_token", "cls_token", "sep_token") if getattr(tokenizer, name) is None]
    if missing:
        raise HfPretrainError(f"{flag} {name_or_path}: the tokenizer has no {', '.join(missing)}")
    return tokenizer
