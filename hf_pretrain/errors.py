"""User-facing errors: one line that names the file, line or flag at fault, and a clean exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class HfPretrainError(Exception):
    """An error in the user's input (a file, a flag, a config key) that they can fix.

    Recipes turn it into a single ``error: ...`` line on stderr and exit status 2 instead of a traceback.
    """


def located(path: str, line: int | None = None) -> str:
    """``path`` or ``path:line``, the prefix every input error starts with."""
    return f"{path}:{line}" if line is not None else str(path)


def cli_entry(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a recipe's ``main`` so that input errors end the process with one line and exit status 2."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except HfPretrainError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper
