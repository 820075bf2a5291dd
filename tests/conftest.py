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
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Under xdist (`make test`: two workers on two cores) each worker and every run it starts gets its share of the
# cores: torch would otherwise start one thread per core in each, and the workers' threads would contend (the suite
# took 10 % longer that way). Set before torch is imported here and inherited by the recipes' processes.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

# scikit-learn sets KMP_DUPLICATE_LIB_OK and KMP_INIT_AT_FORK when first imported (the GLUE metrics import it):
# imported here, before any test, so every recipe run of the worker sees the environment its zygote was started in
# (after an import mid-suite, each run started a fresh interpreter; `environment_left_as_found` caught it).
import sklearn  # noqa: E402,F401
# transformers' Trainer sets TORCHINDUCTOR_CACHE_DIR when first imported (torch's inductor picks its cache): the same
# reason, so a test whose first use of a module that imports it (hf_pretrain.glue.finetune, the checkpoints) comes in
# the test's body, or in a helper module it imports, leaves the environment as it found it.
import transformers.trainer  # noqa: E402,F401

from .zygote import Forked, zygote_for  # noqa: E402 (after the thread count: it imports torch in its warm parent)

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


@pytest.fixture(autouse=True)
def environment_left_as_found():
    """A test leaves the process environment as it found it (monkeypatch's changes are undone before this looks).
    A variable left behind changes every later test in this worker: its recipe runs no longer match the zygote's
    environment and each starts a fresh interpreter instead (one such leak made the suite 30 % slower)."""
    before = {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}
    yield
    after = {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the test left the environment changed: {changed}"


def recipe_env(**extra: str) -> dict[str, str]:
    """The environment every recipe run gets: offline, and tokenizers' own threads off (the workers share 2 cores)."""
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **extra}


def run_recipe(*args: str, env: dict | None = None, launcher: list[str] | None = None, timeout: int = 600):
    """Run a recipe as a user would, in a fresh process; returns the CompletedProcess (stdout+stderr merged).

    A script run with this interpreter is forked from the worker's warm parent (``tests/zygote.py``), its imports
    done; a launcher, a ``-c`` probe or another environment gets a process of its own from the start."""
    command = [*(launcher or [sys.executable]), *args]
    full_env = recipe_env(**(env or {}))
    if launcher is None and not env and args[0] != "-c" and (zygote := zygote_for(full_env)) is not None:
        return zygote.run(list(args), ROOT, timeout)
    return subprocess.run(
        command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )


def start_recipe(*args: str, launcher: list[str] | None = None) -> subprocess.Popen | Forked:
    """Start a run as a scheduler or a terminal starts a job (a process group of its own, SIGINT at its default: a
    worker that ignores it, as one started in the background by a shell does, would pass that on) and return at
    once, stdout and stderr merged; forked like :func:`run_recipe`'s runs where it can be (not a launcher)."""
    if launcher is None and (zygote := zygote_for(recipe_env())) is not None:
        return zygote.start(list(args), ROOT, session=True)
    return subprocess.Popen([*(launcher or [sys.executable]), *args], cwd=ROOT, env=recipe_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_env(rank: int, processes: int, port: int) -> dict[str, str]:
    """What ``accelerate launch --multi_gpu --num_processes N --mixed_precision no --dynamo_backend no`` (torchrun,
    one machine) puts in each trainer's environment, as its trainers print it."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "GROUP_RANK": "0", "ROLE_RANK": str(rank),
            "WORLD_SIZE": str(processes), "LOCAL_WORLD_SIZE": str(processes), "GROUP_WORLD_SIZE": "1",
            "ROLE_WORLD_SIZE": str(processes), "ROLE_NAME": "default", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "ACCELERATE_MIXED_PRECISION": "no",
            "ACCELERATE_DYNAMO_BACKEND": "NO", "ACCELERATE_DYNAMO_MODE": "default",
            "ACCELERATE_DYNAMO_USE_FULLGRAPH": "False", "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION": "False"}


def run_processes(*args: str, processes: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """A run of ``processes`` processes on this machine over gloo, as ``accelerate launch --multi_gpu --num_processes
    N`` starts it: each trainer forked from the warm parent with the environment that launcher gives it, their
    outputs joined in rank order; when one fails the others are stopped (as torchrun does). The launcher itself is
    run by the tests that are about it (two machines, its configs, a signal to its process group); without a
    zygote, this is that launcher."""
    port = free_port()
    if (zygote := zygote_for(recipe_env())) is None:
        return run_recipe("launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), *args,
                          launcher=[ACCELERATE], timeout=int(timeout))
    runs = [zygote.start(list(args), ROOT, env=_rank_env(rank, processes, port)) for rank in range(processes)]
    deadline, timed_out = time.monotonic() + timeout, False
    try:
        while any(run.poll() is None for run in runs) and not any(run.returncode for run in runs):
            if timed_out := time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        for run in runs:
            run.kill()
            run.wait()
    output = "".join(run.communicate()[0] for run in runs)
    if timed_out:
        raise subprocess.TimeoutExpired(runs[0].args, timeout, output=output)
    returncode = next((run.returncode for run in runs if run.returncode), 0)
    return subprocess.CompletedProcess(runs[0].args, returncode, stdout=output)


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
