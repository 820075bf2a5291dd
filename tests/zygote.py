"""Recipe runs in fresh processes without paying for the imports each time: a warm parent that forks each run.

A recipe process spends about 8 s of this machine's time importing torch, transformers, datasets and peft (and
tearing them down at exit) before it reads its first flag, more than most test runs then train. The suite starts
about 150 of them. So each pytest worker keeps one *zygote*: a process that imports those modules once, runs
nothing (no torch operation, no thread), and forks a child per run. The child is a new process as a user's run is
-- its own pid, memory, working directory, ``sys.argv``, merged stdout and stderr, exit status, atexit handlers
-- which runs the script as ``__main__`` from its first line; only the imports were already done.

A test that signals or watches a run while it trains starts it (:meth:`Zygote.start`, a ``Popen``-like handle;
``session``: a process group of its own and SIGINT at Python's default, as a job has them), and the trainers of a
several-process run are forked with the variables the launcher would give each (rank, world size, the rendezvous
port: read when the run starts, so they can be added after the imports; ``conftest.run_processes``).

Where a run could see a difference, it gets a real ``subprocess`` instead: another environment (modules such as
``huggingface_hub`` read variables like ``HF_ENDPOINT`` when imported), a launcher when it is what the test is about
(``accelerate launch`` over two machines, its config files, a signal to its process group, one SIGKILL), and
``python -c`` probes (those check what loads *without* hf_pretrain). ``HF_PRETRAIN_TEST_FRESH_PROCESSES=1`` turns
the zygote off altogether (the several-process runs then go through ``accelerate launch``).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_PARENT = r"""
import atexit, json, os, pkgutil, runpy, signal, sys, traceback

import hf_pretrain, peft, transformers
for module in pkgutil.walk_packages(hf_pretrain.__path__, "hf_pretrain."):
    __import__(module.name)
for name in ("bert", "roberta", "modernbert", "electra"):
    __import__(f"transformers.models.{name}.modeling_{name}")
# What every run's report (its figures) and tokenizer load would otherwise import, in each forked run afresh.
import matplotlib.backends.backend_agg, PIL.Image, transformers.models.bert.tokenization_bert
PIL.Image.init()


def child(request):
    code = 1
    try:
        if request["session"]:
            os.setsid()  # a process group of its own, as a scheduler's job or a terminal's foreground has
            # SIGINT as a fresh interpreter has it (the worker ignores it, and a fork inherits that).
            signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.update(request["env"])
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.chdir(request["cwd"])
        sys.argv = request["argv"]
        sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python script.py` sets it
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as exit:  # as the interpreter reads it: None is 0, a message is printed and is 1
            code = 0 if exit.code is None else exit.code
            if not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()  # what the interpreter runs at exit: the output folder's lock, logging's flush
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def reply(message):
    print(json.dumps(message), flush=True)  # flushed before the next fork, or a child would inherit it


for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        pid = os.fork()
        if pid == 0:
            child(request)
        reply({"pid": pid})
    else:  # "wait": the run's exit status, or None while it runs (when not asked to block)
        pid, status = os.waitpid(request["pid"], 0 if request["block"] else os.WNOHANG)
        reply({"returncode": os.waitstatus_to_exitcode(status) if pid else None})
"""


class Forked:
    """A run forked by the zygote, answering as the parts of ``subprocess.Popen`` the tests use (``stdout`` and
    ``stderr`` merged, read once it ended). The zygote is its parent, so it is the zygote that reaps it."""

    def __init__(self, zygote: "Zygote", args: list[str], pid: int, output: str):
        self.zygote, self.args, self.pid, self.output = zygote, args, pid, output
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote._wait(self.pid, block=False)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            if self.returncode is None:
                self.returncode = self.zygote._wait(self.pid, block=True)
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.05)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        self.wait(timeout)
        return Path(self.output).read_text(errors="replace"), None

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """One warm parent per pytest worker. :meth:`run` answers as ``subprocess.run`` with merged output does;
    :meth:`start` as ``subprocess.Popen`` does, for a run the test signals or watches while it trains."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, text=True)
        self.outputs = tempfile.mkdtemp(prefix="zygote-")
        atexit.register(self.close)

    def start(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, session: bool = False) -> Forked:
        """Fork a run of the script ``argv[0]``; ``env`` is added to the zygote's environment (variables read when
        a run starts, not when a module is imported: ranks, ports); ``session``: a process group of its own, SIGINT
        at Python's default."""
        descriptor, output = tempfile.mkstemp(suffix=".log", dir=self.outputs)
        os.close(descriptor)
        self._send({"op": "start", "argv": argv, "cwd": str(cwd), "output": output, "env": env or {},
                    "session": session})
        return Forked(self, [sys.executable, *argv], self._reply()["pid"], output)

    def run(self, argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        run = self.start(argv, cwd)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            run.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            run.wait()
        finally:
            timer.cancel()
        stdout, _ = run.communicate()
        os.unlink(run.output)
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(run.args, timeout, output=stdout)
        return subprocess.CompletedProcess(run.args, run.returncode, stdout=stdout)

    def _wait(self, pid: int, block: bool) -> int | None:
        self._send({"op": "wait", "pid": pid, "block": block})
        return self._reply()["returncode"]

    def _send(self, request: dict) -> None:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote process ended (exit status {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


_zygote: Zygote | None = None


def zygote_for(env: dict[str, str]) -> Zygote | None:
    """This worker's zygote, if a run in ``env`` can be forked from it (see the module's docstring)."""
    global _zygote
    if os.environ.get("HF_PRETRAIN_TEST_FRESH_PROCESSES") == "1":
        return None
    env = {name: value for name, value in env.items() if name != "PYTEST_CURRENT_TEST"}  # pytest's, changes per test
    if _zygote is None:
        _zygote = Zygote(env)
    return _zygote if env == _zygote.env else None
