"""Pushing checkpoints to the Hugging Face Hub with the real ``huggingface_hub`` client.

The repository is created (or found) before training starts, so an unreachable Hub or a bad token fails the run
in seconds rather than after hours of training. The token is passed to the client and never logged or saved.
"""

from __future__ import annotations

import logging
import os

from huggingface_hub import HfApi, constants

from ..constants import OUTPUT_DIR_LOCK
from ..errors import HfPretrainError

logger = logging.getLogger(__name__)

# Never uploaded: the Trainer's pickled arguments, intermediate checkpoints and the live run's lock.
IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", "training_args.bin", "runs/**", "*.pt", "*.pth", "*.pkl",
                   OUTPUT_DIR_LOCK]


def hub_repo_id(hub_model_id: str | None, output_dir: str) -> str:
    """``--hub_model_id``, or the output folder's name as ``run_mlm.py`` does."""
    return hub_model_id or os.path.basename(os.path.abspath(output_dir))


def prepare_hub_repo(repo_id: str, token: str | None, private: bool | None = None) -> str:
    """Create the model repository if needed; fail with one clear line if the Hub cannot be reached."""
    try:
        url = HfApi(token=token).create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    except Exception as err:  # connection refused, DNS failure, 401/403 from the Hub
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise HfPretrainError(
            f"--push_to_hub: cannot create or reach {repo_id} on {constants.ENDPOINT} ({reason}); check your "
            "connection and token (huggingface-cli login or HF_TOKEN), or drop --push_to_hub"
        ) from None
    logger.info("pushing to %s when training ends", url)
    return repo_id


def prepare_push(args) -> str | None:
    """With ``--push_to_hub``, the repository id to push to, created (or found) now; otherwise None."""
    if not args.push_to_hub:
        return None
    return prepare_hub_repo(hub_repo_id(args.hub_model_id, args.output_dir), args.hub_token, args.hub_private_repo)


def push_folder(folder: str, repo_id: str, token: str | None, commit_message: str) -> None:
    """Upload the final model, tokenizer and model card in one commit."""
    try:
        HfApi(token=token).upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type="model",
            commit_message=commit_message,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise HfPretrainError(
            f"--push_to_hub: the upload to {repo_id} failed ({reason}); the model is saved in {folder}, "
            "push it later with `huggingface-cli upload`"
        ) from None
