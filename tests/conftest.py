"""Shared fixtures: a small synthetic corpus, a tokenizer trained on it, and a runner for the recipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEBUG = str(ROOT / "recipes" / "configs" / "debug.yaml")

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can out other who"
).split()


def synthetic_documents(n_documents: int = 40, sentences: int = 12, seed: int = 0) -> list[list[str]]:
    """Documents of numbered sentences: 'doc 3 sentence 7 ...' makes pair provenance checkable."""
    import random

    rng = random.Random(seed)
    return [
        [
            f"Doc{d} sentence{s} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + "."
            for s in range(sentences)
        ]
        for d in range(n_documents)
    ]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    """A plain-text corpus: one paragraph per line, a blank line between documents."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    docs = synthetic_documents()
    path.write_text("\n\n".join(" ".join(doc[:6]) + "\n" + " ".join(doc[6:]) for doc in docs) + "\n")
    return path


@pytest.fixture(scope="session")
def tokenizer(corpus_file):
    from hf_pretrain.corpus import load_documents
    from hf_pretrain.tokenizer import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(load_documents([str(corpus_file)])["text"], vocab_size=300)


def run_recipe(*args: str, env: dict | None = None, launcher: list[str] | None = None, timeout: int = 600):
    """Run a recipe as a user would, in a fresh process; returns the CompletedProcess (stdout+stderr merged)."""
    command = [*(launcher or [sys.executable]), *args]
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )


requires_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
