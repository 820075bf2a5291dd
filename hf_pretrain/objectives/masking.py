"""Masked-LM token selection as free functions of tensors and a generator, vectorized over the batch.

Three units of selection: single tokens (BERT, Devlin et al. 2019, section 3.1), whole words (BERT's later
whole-word-masking release) and spans of whole words (SpanBERT, Joshi et al. 2020). One implementation serves
dynamic masking (called by the collator on every batch) and static masking (called once per copy at data
preparation, as the original BERT data pipeline did with its duplication factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from ..constants import IGNORE_INDEX
from ..rng import Stream, torch_generator

MASKING_UNITS = ("token", "whole_word", "span")


@dataclass(frozen=True)
class MaskingConfig:
    """What masked-LM training selects and how it corrupts it: one value passed to the masking functions, the
    collator and static masking alike. Each default is its paper's."""

    # BERT (Devlin et al., 2019, section 3.1): 15 % of the tokens are selected. Later recipes select more: 30 %
    # in MosaicBERT and ModernBERT, 20 % in NeoBERT.
    mlm_probability: float = 0.15
    # BERT: of the selected tokens, 80 % become [MASK], 10 % a random token and 10 % stay as they are, so the model
    # cannot tell which inputs to trust. ELECTRA's generator input masks them all (1.0 / 0.0).
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    # "token" (BERT), "whole_word" (every sub-word of a chosen word: BERT's whole-word-masking release) or "span"
    # (SpanBERT, Joshi et al., 2020: spans of whole words).
    unit: str = "token"
    # SpanBERT (section 3.1): span lengths ~ Geometric(0.2), clipped at 10 words (mean 3.8).
    span_geometric_p: float = 0.2
    max_span_length: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if min(self.mask_replace_prob, self.random_replace_prob) < 0 or (
            self.mask_replace_prob + self.random_replace_prob > 1
        ):
            raise ValueError("mask_replace_prob and random_replace_prob must be non-negative and sum to at most 1")
        if self.unit not in MASKING_UNITS:
            raise ValueError(f"unit must be one of {', '.join(MASKING_UNITS)}, not {self.unit!r}")
        if not 0 < self.span_geometric_p <= 1:
            raise ValueError(f"span_geometric_p must be in (0, 1], got {self.span_geometric_p}")
        if self.max_span_length < 1:
            raise ValueError(f"max_span_length must be at least 1, got {self.max_span_length}")


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """Ids that are never selected for masking nor drawn as random replacements ([PAD], [CLS], [SEP], [MASK], [UNK])."""
    return torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)


def replacement_token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The real vocabulary: every id a random replacement may take."""
    ids = torch.arange(len(tokenizer), dtype=torch.long)
    return ids[~torch.isin(ids, special_token_ids(tokenizer))]


def word_start_table(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """``table[id]`` is True where token ``id`` begins a word, from the tokenizer's sub-word convention:
    WordPiece marks continuations (``##``), byte-level BPE (``Ġ``) and SentencePiece (``▁``) mark word starts.

    Raises ``ValueError`` for a vocabulary that follows none of them; pass ``word_ids`` features instead.
    """
    vocab = tokenizer.get_vocab()
    tokens = [""] * len(tokenizer)
    for token, index in vocab.items():
        if index < len(tokens):
            tokens[index] = token
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    continuation = getattr(model, "continuing_subword_prefix", None)
    if continuation:  # WordPiece
        starts = [not t.startswith(continuation) for t in tokens]
    else:
        marker = max(("Ġ", "▁"), key=lambda m: sum(t.startswith(m) for t in tokens))
        if sum(t.startswith(marker) for t in tokens) < 0.1 * len(tokens):
            raise ValueError(
                "cannot tell word boundaries from this vocabulary (no '##', 'Ġ' or '▁' convention); "
                "give the collator 'word_ids' features from the tokenizer"
            )
        starts = [t.startswith(marker) for t in tokens]
    table = torch.tensor(starts, dtype=torch.bool)
    table[special_token_ids(tokenizer)] = True
    return table


def word_starts_from_ids(word_ids: torch.Tensor) -> torch.Tensor:
    """Word starts from a tokenizer's ``word_ids`` (-1 where there is no word, as for special tokens)."""
    previous = torch.nn.functional.pad(word_ids[:, :-1], (1, 0), value=-1)
    return (word_ids != previous) | (word_ids < 0)


def _unit_start_index(starts: torch.Tensor) -> torch.Tensor:
    """For every position, the index of the first token of its unit (word or span): a running max of starts."""
    positions = torch.arange(starts.shape[1]).expand_as(starts)
    return torch.cummax(torch.where(starts, positions, 0), dim=1).values


def span_length_distribution(p: float = 0.2, max_length: int = 10) -> torch.Tensor:
    """SpanBERT's span lengths, in words: a geometric distribution of parameter ``p`` cut at ``max_length`` and
    renormalized (mean 3.8 for the paper's p = 0.2, max 10). ``probabilities[k]`` is for length ``k + 1``."""
    lengths = torch.arange(1, max_length + 1, dtype=torch.float64)
    probabilities = p * (1 - p) ** (lengths - 1)
    return probabilities / probabilities.sum()


def select_spans(
    word_starts: torch.Tensor,
    selectable: torch.Tensor,
    budget: float,
    generator: torch.Generator | None = None,
    span_geometric_p: float = 0.2,
    max_span_length: int = 10,
) -> torch.Tensor:
    """SpanBERT's selection: spans of whole words, with lengths drawn from a clipped geometric distribution, chosen
    until ``budget`` of each row's selectable tokens is masked. Returns each token's span index (-1 if unselected).

    Each row's words are tiled into consecutive spans of random length; spans are then taken in a random order
    until the budget is met. The span that crosses the budget is taken with the probability that makes the
    expected masked fraction exactly ``budget``, so a row is neither always under nor always over it.
    """
    rows, length = word_starts.shape
    starts = word_starts & selectable
    word_index = torch.cumsum(starts, dim=1) - 1  # (rows, length) the word each token belongs to
    # Every span holds at least one word, so a row has at most as many spans as words.
    n_spans = max(int(starts.sum(1).max()) if rows else 0, 1)
    distribution = span_length_distribution(span_geometric_p, max_span_length)
    span_lengths = torch.multinomial(distribution, rows * n_spans, replacement=True, generator=generator) + 1
    span_ends = torch.cumsum(span_lengths.view(rows, n_spans), dim=1)  # (rows, spans) first word after each span
    word_span = torch.searchsorted(span_ends, torch.arange(n_spans).repeat(rows, 1), right=True)  # (rows, words)
    token_span = torch.where(
        selectable & (word_index >= 0), word_span.gather(1, word_index.clamp(min=0)), n_spans
    )  # (rows, length); n_spans marks tokens outside every span

    tokens_per_span = torch.zeros(rows, n_spans + 1, dtype=torch.long).scatter_add_(
        1, token_span, torch.ones_like(token_span)
    )[:, :n_spans]
    order = torch.argsort(torch.rand(rows, n_spans, generator=generator), dim=1)
    counts = tokens_per_span.gather(1, order)
    after = torch.cumsum(counts, dim=1)
    before = after - counts
    target = budget * selectable.sum(1, keepdim=True)  # (rows, 1)
    crossing = (before < target) & (after > target)
    take_crossing = torch.rand(rows, n_spans, generator=generator) * counts < target - before
    taken_in_order = (counts > 0) & ((after <= target) | (crossing & take_crossing))
    taken = torch.zeros(rows, n_spans + 1, dtype=torch.bool)
    taken[:, :n_spans].scatter_(1, order, taken_in_order)
    return torch.where(taken.gather(1, token_span), token_span, -1)


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    special_ids: torch.Tensor,
    mask_token_id: int,
    replacement_ids: torch.Tensor,
    config: MaskingConfig = MaskingConfig(),
    word_starts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select ``config.mlm_probability`` of the non-special tokens and corrupt them for masked-LM training.

    ``config.unit`` is what is selected: single tokens, whole words (every sub-word of a chosen word, each word
    chosen with probability ``mlm_probability``) or SpanBERT spans of whole words. Words need ``word_starts``
    (``(batch, seq)`` bools, from :func:`word_start_table` or :func:`word_starts_from_ids`).

    Of the selected tokens, ``mask_replace_prob`` become ``[MASK]``, ``random_replace_prob`` a random real token,
    and the rest stay as they are. Tokens and whole words draw this per token (as BERT's release did); spans draw
    it once per span (as SpanBERT does). Returns ``(inputs, labels)``; labels are ``-100`` wherever a token was
    not selected. ``input_ids`` is not modified.
    """
    unit, mlm_probability = config.unit, config.mlm_probability
    mask_replace_prob, random_replace_prob = config.mask_replace_prob, config.random_replace_prob
    if unit != "token" and word_starts is None:
        raise ValueError(f"{unit} masking needs word_starts")
    # (batch, seq)
    selectable = ~torch.isin(input_ids, special_ids)
    decision_index = None  # where each token reads its mask / random / keep draw (None: its own position)
    if unit == "token":
        probability = torch.where(selectable, mlm_probability, 0.0)
        selected = torch.bernoulli(probability, generator=generator).bool()
    elif unit == "whole_word":
        # A token after a special one starts a word even without a marker (BPE's first word has no 'Ġ').
        after_special = torch.nn.functional.pad(~selectable[:, :-1], (1, 0), value=True)
        word_start = _unit_start_index(word_starts | ~selectable | after_special)
        draw = torch.rand(input_ids.shape, generator=generator)
        selected = selectable & (draw.gather(1, word_start) < mlm_probability)
    else:
        after_special = torch.nn.functional.pad(~selectable[:, :-1], (1, 0), value=True)
        span = select_spans(
            word_starts | after_special, selectable, mlm_probability, generator, config.span_geometric_p,
            config.max_span_length,
        )
        selected = span >= 0
        # A span's first token carries the decision for the whole span (even one an [UNK] cuts in two).
        rows, length = input_ids.shape
        slot = torch.where(selected, span, length)  # span ids are < length; unselected tokens share a spare slot
        positions = torch.arange(length).expand(rows, -1)
        first = torch.full((rows, length + 1), length - 1).scatter_reduce_(1, slot, positions, "amin")
        decision_index = first.gather(1, slot)
    labels = torch.where(selected, input_ids, IGNORE_INDEX)

    # One uniform draw per token splits the selected ones into mask / random / keep.
    split = torch.rand(input_ids.shape, generator=generator)
    if decision_index is not None:
        split = split.gather(1, decision_index)
    to_mask = selected & (split < mask_replace_prob)
    to_random = selected & (split >= mask_replace_prob) & (split < mask_replace_prob + random_replace_prob)

    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    draws = torch.randint(len(replacement_ids), (int(to_random.sum()),), generator=generator)
    inputs[to_random] = replacement_ids[draws]
    return inputs, labels


def mask_dataset(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    config: MaskingConfig = MaskingConfig(),
    *,
    duplication_factor: int = 1,
    seed: int = 0,
    stream: Stream = Stream.STATIC_MASKS,
    num_proc: int | None = None,
) -> Dataset:
    """Static masking: each sequence stored ``duplication_factor`` times, each copy with its own masks.

    The masks of a row depend only on ``stream``, ``seed``, the copy and the row's index, so they are the same
    whatever ``num_proc`` is, and on every run with the same seed. Adds a ``labels`` column.
    """
    special_ids = special_token_ids(tokenizer)
    replacement_ids = replacement_token_ids(tokenizer)
    starts_table = word_start_table(tokenizer) if config.unit != "token" else None

    def mask_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {key: [] for key in (*batch, "labels")}
        for row, index in enumerate(indices):
            ids = torch.as_tensor(batch["input_ids"][row], dtype=torch.long)[None]  # (1, seq)
            for copy in range(duplication_factor):
                # One generator per (row, copy): the masks do not depend on batching or num_proc.
                inputs, labels = mask_tokens(
                    ids,
                    special_ids=special_ids,
                    mask_token_id=tokenizer.mask_token_id,
                    replacement_ids=replacement_ids,
                    config=config,
                    word_starts=starts_table[ids] if starts_table is not None else None,
                    generator=torch_generator(stream, seed, index, copy),
                )
                for key, values in batch.items():
                    out[key].append(inputs[0].tolist() if key == "input_ids" else values[row])
                out["labels"].append(labels[0].tolist())
        return out

    return dataset.map(
        mask_batch,
        batched=True,
        batch_size=1000,
        with_indices=True,
        num_proc=num_proc,
        desc=f"Static masking (x{duplication_factor})",
    )
