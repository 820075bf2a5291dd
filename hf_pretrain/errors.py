"""User-facing errors: one line that names the file, line or flag at fault, and a clean exit."""

from __future__ import annotations

import errno
import functools
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

BAD_INPUT_POLICIES = ("error", "skip")


class HfPretrainError(Exception):
    """An error in the user's input (a file, a flag, a config key) that they can fix.

    Recipes turn it into a single ``error: ...`` line on stderr and exit status 2 instead of a traceback.
    """


class Interrupted(Exception):
    """The run was stopped by a signal after saving a checkpoint: one line and ``exit_code`` (128 + the signal's
    number, as a shell reports a process the signal ended)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def located(path: str, line: int | None = None) -> str:
    """``path`` or ``path:line``, the prefix every input error starts with."""
    return f"{path}:{line}" if line is not None else str(path)


def check_bad_input_policy(policy: str) -> None:
    """The ``--on_bad_input`` flag's check, shared by every argument dataclass that has it."""
    if policy not in BAD_INPUT_POLICIES:
        raise HfPretrainError(f"--on_bad_input must be one of {', '.join(BAD_INPUT_POLICIES)}, not '{policy}'")


@dataclass
class BadInput:
    """What the readers do with a malformed line or row: stop with an error that names it (``policy="error"``,
    the default) or, with ``policy="skip"``, leave it out and count it under its problem."""

    policy: str = "error"
    counts: Counter = field(default_factory=Counter)
    first_at: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_bad_input_policy(self.policy)

    def __call__(self, where: str, problem: str, detail: str = "", advice: str = "") -> None:
        """Report ``problem`` at ``where`` (``path:line``); returns only when the policy is to skip."""
        if self.policy == "error":
            message = f"{where}: {problem}" + (f" {detail}" if detail else "")
            hint = f"; {advice}" if advice else ""
            raise HfPretrainError(f"{message}{hint}, or pass --on_bad_input skip to leave such lines out")
        self.counts[problem] += 1
        self.first_at.setdefault(problem, where)

    def summary(self) -> str:
        """``skipped 3 bad lines or rows: 2 not UTF-8 text (first at a.txt:4), ...``, or '' if none were."""
        if not self.counts:
            return ""
        parts = [f"{n} {problem} (first at {self.first_at[problem]})" for problem, n in self.counts.most_common()]
        return f"skipped {sum(self.counts.values())} bad lines or rows: " + ", ".join(parts)


# How a full disk shows: Python and safetensors name it; torch's writer (optimizer.pt, rng_state.pth) says only that
# a write went wrong, so that case is told by the free space left where the run writes.
_NO_SPACE = ("No space left on device", "os error 28")
_TORCH_WRITE_FAILED = ("inline_container.cc", "PytorchStreamWriter", "basic_ios::clear", "file write failed")


def disk_full(err: BaseException, folder: str | None = None, needed: int = 64 * 2**20) -> bool:
    """Whether ``err`` is a write that failed for lack of space; with ``folder``, torch's unnamed write failures
    count too when ``folder`` has less than ``needed`` bytes free."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC or any(text in str(err) for text in _NO_SPACE):
        return True
    if folder is None or not any(text in str(err) for text in _TORCH_WRITE_FAILED):
        return False
    try:
        return shutil.disk_usage(folder).free < needed
    except OSError:
        return False


def cli_entry(main: Callable[..., None]) -> Callable[..., None]:
    """Wrap a recipe's ``main`` so that input errors end the process with one line and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> None:
        try:
            main(*args, **kwargs)
        except HfPretrainError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
        except Interrupted as err:
            print(f"interrupted: {err}", file=sys.stderr, flush=True)
            sys.exit(err.exit_code)
        except Exception as err:
            if not disk_full(err):
                raise
            print(f"error: no space left on the device ({err}): free some space and rerun the same command",
                  file=sys.stderr, flush=True)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C: the last complete checkpoint stays the one to resume from
            print("interrupted: the run stopped; rerun the same command to resume from its last checkpoint",
                  file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper
