"""Document cleaning for the preparation stage: normalization, then filters that each name why they drop a document.

The quality rules are those of Gopher (Rae et al., 2021, appendix A) and C4 (Raffel et al., 2020, section 2.2),
with their published thresholds as defaults. They are a few lines each over words and lines, so they are written
here; datatrove has equivalents, but they come with its pipeline, document type and tokenizer dependencies.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from collections.abc import Callable
from functools import lru_cache

import ftfy
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from ..errors import HfPretrainError

# WikiExtractor and raw-wiki leftovers: [[target|label]] links, {{templates}}, bold/italic quotes, list markers.
_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_WIKI_QUOTES = re.compile(r"'{2,}")
_WIKI_MARKERS = re.compile(r"^(?:BULLET::::-?|Section::::|=+\s*)|\s*=+$")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")

GOPHER_STOP_WORDS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))
C4_BOILERPLATE = ("lorem ipsum", "javascript", "cookie policy", "privacy policy", "terms of use", "uses cookies")


def normalize(text: str) -> str:
    """Repair mis-decoded Unicode (ftfy), strip HTML tags, entities and wiki markup, and normalize whitespace:
    one paragraph per line, single spaces, no empty lines."""
    text = ftfy.fix_text(html.unescape(text))
    for _ in range(3):  # templates nest
        text, found = _TEMPLATE.subn("", text)
        if not found:
            break
    text = _WIKI_QUOTES.sub("", _LINK.sub(r"\1", _TAG.sub("", text)))
    lines = (_SPACES.sub(" ", _WIKI_MARKERS.sub("", line.strip())).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class Document:
    """A document as the filters read it: its words and lines, split once."""

    def __init__(self, text: str, sentences: int | None = None) -> None:
        self.text = text
        self.sentences = sentences
        self.words = text.split()
        self.lines = text.splitlines() or [""]

    @property
    def n_words(self) -> int:
        return max(len(self.words), 1)


def _wrong_language(f: QualityFilters, d: Document) -> bool:
    language, score = identify_language(d.text)
    return language not in f.languages or score < f.min_language_score


def _mean_word_length_out_of_range(f: QualityFilters, d: Document) -> bool:
    mean = sum(map(len, d.words)) / d.n_words
    return not f.min_mean_word_length <= mean <= f.max_mean_word_length


def _fraction_of_lines(d: Document, test) -> float:
    return sum(map(test, d.lines)) / len(d.lines)


# Each filter by name, in the order they run: (filters, document) -> True when the document fails the rule.
FILTERS: dict[str, Callable[[QualityFilters, Document], bool]] = {
    "too short": lambda f, d: len(d.words) < f.min_words,
    "too long": lambda f, d: len(d.words) > f.max_words,
    "language": _wrong_language,
    "mean word length": _mean_word_length_out_of_range,
    "symbol ratio": lambda f, d: (
        d.text.count("#") + d.text.count("...") + d.text.count("…") > f.max_symbol_ratio * d.n_words),
    "lines ending in ellipsis": lambda f, d: (
        _fraction_of_lines(d, lambda line: line.rstrip().endswith(("...", "…"))) > f.max_ellipsis_line_ratio),
    "words without letters": lambda f, d: (
        sum(any(c.isalpha() for c in word) for word in d.words) < f.min_alpha_word_ratio * d.n_words),
    "too few stop words": lambda f, d: (
        len(GOPHER_STOP_WORDS.intersection(word.lower() for word in d.words)) < f.min_stop_words),
    "digit ratio": lambda f, d: sum(c.isdigit() for c in d.text) > f.max_digit_ratio * max(len(d.text), 1),
    "repeated lines": lambda f, d: len(d.lines) - len(set(d.lines)) > f.max_duplicate_line_ratio * len(d.lines),
    "boilerplate lines": lambda f, d: _fraction_of_lines(
        d, lambda line: any(phrase in line.lower() for phrase in C4_BOILERPLATE)) > f.max_boilerplate_line_ratio,
    "too few sentences": lambda f, d: d.sentences is not None and d.sentences < f.min_sentences,
}


def _threshold(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass
class QualityFilters:
    """Which filters run and their thresholds (defaults: Gopher's and C4's); parsed as ``prepare``'s flags."""

    min_words: int = _threshold(50, "Drop documents of fewer words (Gopher: 50).")
    max_words: int = _threshold(100_000, "Drop documents of more words (Gopher: 100,000).")
    languages: list[str] = field(
        default_factory=lambda: ["en"], metadata={"help": "Keep documents in these languages (ISO 639-1 codes)."}
    )
    min_language_score: float = _threshold(0.65, "Minimum probability of the identified language (CCNet: 0.5-0.65).")
    min_mean_word_length: float = _threshold(3.0, "Gopher: mean word length at least 3 characters...")
    max_mean_word_length: float = _threshold(10.0, "...and at most 10.")
    max_symbol_ratio: float = _threshold(0.1, "Gopher: at most 0.1 '#' or ellipsis per word.")
    max_ellipsis_line_ratio: float = _threshold(0.3, "Gopher: at most 30 % of lines ending in an ellipsis.")
    min_alpha_word_ratio: float = _threshold(0.8, "Gopher: at least 80 % of words contain a letter.")
    min_stop_words: int = _threshold(2, "Gopher: at least 2 of: the, be, to, of, and, that, have, with.")
    max_digit_ratio: float = _threshold(0.2, "At most this fraction of characters are digits.")
    max_duplicate_line_ratio: float = _threshold(0.3, "Gopher: at most 30 % of lines repeated within the document.")
    max_boilerplate_line_ratio: float = _threshold(
        0.3, "C4: at most 30 % of lines with boilerplate (lorem ipsum, javascript, cookie or privacy policy...)."
    )
    min_sentences: int = _threshold(3, "C4: at least 3 sentences.")
    skip_filters: list[str] = field(
        default_factory=list, metadata={"help": f"Filters to turn off, by name: {', '.join(FILTERS)}."}
    )

    def __post_init__(self) -> None:
        unknown = [name for name in self.skip_filters if name not in FILTERS]
        if unknown:
            raise HfPretrainError(f"--skip_filters: unknown filter(s) {unknown}; the filters are: {', '.join(FILTERS)}")

    def reason_to_drop(self, text: str, sentences: int | None = None) -> str | None:
        """The first rule ``text`` fails, by its name in ``FILTERS``, or None if it passes them all."""
        document = Document(text, sentences)
        for name, fails in FILTERS.items():
            if name not in self.skip_filters and fails(self, document):
                return name
        return None


@lru_cache(maxsize=1)
def _identifier():
    # An offline model shipped with the package (numpy arrays, no pickle).
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify_language(text: str, max_chars: int = 2000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language, from its first ``max_chars`` characters."""
    language, score = _identifier().classify(text[:max_chars])
    return language, float(score)
