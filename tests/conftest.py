"""Shared fixtures (a small synthetic corpus, a tokenizer trained on it, a runner for the recipes) and the test tiers.

Tiers, as STYLE.md lays them out, each a pytest marker a test file sets (``pytestmark``; ``pytest -m unit`` runs one):
1. ``unit``: the pure functions, statistically and exactly (masking rates, sparse prediction, pairs, the layering);
2. ``component``: readers, cleaning, deduplication, GLUE formats and hostile input, on crafted files;
3. ``end_to_end``: the recipes run as a user runs them (pretrain, resume after SIGKILL, fine-tune, benchmarks).
``make test`` runs all three and the summary says how long each took.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Under xdist (`make test`: two workers on two cores) each worker and every run it starts gets its share of the
# cores: torch would otherwise start one thread per core in each, and the workers' threads would contend (the suite
# took 10 % longer that way). Set before torch is imported here and inherited by the recipes' processes.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

from .zygote import zygote_for  # noqa: E402 (after the thread count: it imports torch in its warm parent)

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
    from hf_pretrain.data.corpus import load_documents
    from hf_pretrain.data.tokenizer import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(load_documents([str(corpus_file)])["text"], vocab_size=300)


def run_recipe(*args: str, env: dict | None = None, launcher: list[str] | None = None, timeout: int = 600):
    """Run a recipe as a user would, in a fresh process; returns the CompletedProcess (stdout+stderr merged).

    A script run with this interpreter is forked from the worker's warm parent (``tests/zygote.py``), its imports
    done; a launcher, a ``-c`` probe or another environment gets a process of its own from the start."""
    command = [*(launcher or [sys.executable]), *args]
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
    if launcher is None and not env and args[0] != "-c" and (zygote := zygote_for(full_env)) is not None:
        return zygote.run(list(args), ROOT, timeout)
    return subprocess.run(
        command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )


HF_PRETRAIN = str(Path(sys.executable).parent / "hf-pretrain")  # the console script `make install` puts there


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``hf-pretrain ARGS`` as a user runs it: its console script, in a process of its own forked like a recipe's
    (stdout and stderr merged into ``stdout``)."""
    return run_recipe(HF_PRETRAIN, *args, timeout=timeout)


TIERS = ("unit", "component", "end_to_end")  # each test file says its own: pytestmark = pytest.mark.unit
_seconds: dict[str, float] = {}


def _tier(item) -> str:
    tiers = [marker.name for marker in item.iter_markers() if marker.name in TIERS]
    if len(tiers) != 1:
        raise pytest.UsageError(f"{item.fspath} must mark one tier of {', '.join(TIERS)} (pytestmark = "
                                f"pytest.mark.unit, at the top of the file), not {tiers or 'none'}")
    return tiers[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.user_properties.append(("tier", _tier(item)))


def pytest_runtest_logreport(report):
    tier = dict(report.user_properties).get("tier")
    if tier:
        _seconds[tier] = _seconds.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _seconds:
        terminalreporter.section("time per tier")
        for tier in TIERS:
            if tier in _seconds:
                terminalreporter.write_line(f"{tier:>10}: {_seconds[tier]:7.1f} s")


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted at ``folder`` with mount ``options`` (a size, ``ro``) for the test's life; needs root, as CI
    has, and skips the test where it cannot be mounted."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


requires_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
