"""Recipe runs in fresh processes without paying for the imports each time: a warm parent that forks each run.

A recipe process spends about 8 s of this machine's time importing torch, transformers, datasets and peft (and
tearing them down at exit) before it reads its first flag, more than most test runs then train. The suite starts
about 150 of them. So each pytest worker keeps one *zygote*: a process that imports those modules once, runs
nothing (no torch operation, no thread), and forks a child per run. The child is a new process as a user's run is
-- its own pid, memory, working directory, ``sys.argv``, merged stdout and stderr, exit status, atexit handlers
-- which runs the script as ``__main__`` from its first line; only the imports were already done.

Where a run could see a difference, it gets a real ``subprocess`` instead: another environment (modules such as
``huggingface_hub`` read variables like ``HF_ENDPOINT`` when imported), a launcher (``accelerate launch``), and
``python -c`` probes (those check what loads *without* hf_pretrain). ``HF_PRETRAIN_TEST_FRESH_PROCESSES=1`` turns
the zygote off altogether.
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
from pathlib import Path

_PARENT = r'''
import atexit, json, os, pkgutil, runpy, sys, traceback

import hf_pretrain, peft, transformers
for module in pkgutil.walk_packages(hf_pretrain.__path__, "hf_pretrain."):
    __import__(module.name)
for name in ("bert", "roberta", "modernbert", "electra"):
    __import__(f"transformers.models.{name}.modeling_{name}")


def child(request):
    code = 1
    try:
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


for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(request)
    print(json.dumps({"pid": pid}), flush=True)  # flushed before the next fork, or a child would inherit it
    print(json.dumps({"returncode": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}), flush=True)
'''


class Zygote:
    """One warm parent per pytest worker; :meth:`run` answers as ``subprocess.run`` with merged output does."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, text=True)
        self.outputs = tempfile.mkdtemp(prefix="zygote-")
        atexit.register(self.close)

    def run(self, argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        output = os.path.join(self.outputs, "run.log")
        self.process.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "output": output}) + "\n")
        self.process.stdin.flush()
        pid = json.loads(self._reply())["pid"]
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.kill(pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            returncode = json.loads(self._reply())["returncode"]
        finally:
            timer.cancel()
        stdout = Path(output).read_text(errors="replace")
        if timed_out.is_set():
            raise subprocess.TimeoutExpired([sys.executable, *argv], timeout, output=stdout)
        return subprocess.CompletedProcess([sys.executable, *argv], returncode, stdout=stdout)

    def _reply(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote process ended (exit status {self.process.wait()})")
        return line

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
