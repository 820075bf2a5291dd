"""Whether the Hugging Face Hub can be reached, asked once before anything is fetched from it.

An unreachable Hub otherwise costs a user about 25 seconds and a screen of warnings: ``huggingface_hub`` retries a
failed request five times with backoff before ``datasets`` or ``transformers`` gives up. One TCP connection with a
short timeout answers the same question at once. In offline mode (``HF_HUB_OFFLINE=1``) nothing is asked: the
libraries then read their cache, and fail fast if the files are not in it.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

from huggingface_hub import constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..errors import HfPretrainError

PROBE_TIMEOUT_SECONDS = 5.0


@functools.cache  # once per endpoint and process: a run names its model in several places (type, config, weights)
def _unreachable(endpoint: str) -> str | None:
    """Why ``endpoint`` cannot be reached (the socket's error), or None when it accepts a connection."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_SECONDS):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


def is_hub_name(name: str) -> bool:
    """Whether ``name`` can be a Hub repository id (``name`` or ``namespace/name``); a path such as
    ``/data/tok`` or ``runs/a/tokenizer`` cannot, and a missing one is then a missing folder."""
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def require_hub(what: str, instead: str, name: str | None = None) -> None:
    """Fail in one line when ``what`` (the flag and value that need the Hub) would be fetched from an unreachable
    Hub; ``instead`` says what the user can pass in its place. ``name`` that is a local path needs no Hub, and in
    offline mode nothing is asked (the cache answers)."""
    if (name is not None and os.path.exists(name)) or constants.HF_HUB_OFFLINE:
        return
    reason = _unreachable(constants.ENDPOINT)
    if reason is not None:
        where = "not a local folder, and " if name is not None else ""
        raise HfPretrainError(
            f"{what}: {where}the Hub ({constants.ENDPOINT}) cannot be reached ({reason}); {instead}, or set "
            "HF_HUB_OFFLINE=1 to use a copy in your Hugging Face cache"
        )
