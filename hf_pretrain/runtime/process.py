"""A run's life as a process, whatever it trains: its log lines, the arguments its Trainer gets and how its
accelerator compiles, what its report lists of them, and a clean end on every process."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator

import transformers
from transformers import Trainer, TrainingArguments

logger = logging.getLogger(__name__)


def configure_logging(args: TrainingArguments) -> None:
    """Our INFO lines on the process that logs, warnings elsewhere; transformers at its own configured level."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(args.get_process_log_level())


def training_args_for_trainer(
    args: TrainingArguments, count_tokens: bool = False, keep_columns: bool = False, **overrides
) -> TrainingArguments:
    """A copy of ``args`` to hand to ``Trainer``.

    It never pushes by itself (the recipes push the final folder with our model card) and holds no Hub token,
    since the Trainer pickles its arguments into every checkpoint. With ``count_tokens`` it counts non-padding
    tokens, which the logs (``train_tokens_per_second``) and the model card report. With ``keep_columns`` every
    dataset column reaches the collator (it keys masks by ``sequence_id``), and the change is logged.
    """
    counting = args.include_num_input_tokens_seen
    if count_tokens and counting in ("no", False):
        counting = "non_padding"
    if keep_columns and args.remove_unused_columns:
        logger.info("remove_unused_columns=False: the collator keys each batch's masks by its sequence_id column")
        overrides["remove_unused_columns"] = False
    return dataclasses.replace(
        args, push_to_hub=False, hub_token=None, include_num_input_tokens_seen=counting, **overrides
    )


@contextlib.contextmanager
def compiled_regions(regions: bool) -> Iterator[None]:
    """How a Trainer built inside compiles (with ``--torch_compile``): block by block, or the whole model.

    The Trainer builds its ``TorchDynamoPlugin`` itself, which reads this choice from the environment variable that
    ``accelerate launch --dynamo_use_regional_compilation`` sets. It is set while the Trainer is built and put back
    afterwards: one run's choice never carries into the next one in the same process, nor into a process it starts."""
    name = "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION"
    before = os.environ.get(name)
    os.environ[name] = "true" if regions else "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


# The training hyperparameters a run report lists (never a token or a path to one).
REPORTED_TRAINING_ARGS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1",
                          "adam_beta2", "adam_epsilon", "max_grad_norm", "per_device_train_batch_size",
                          "gradient_accumulation_steps", "max_steps", "num_train_epochs", "bf16", "fp16", "seed")


def training_summary(args: TrainingArguments, **more) -> dict:
    """The hyperparameters of a run, for its report: these training arguments, the world size, and ``more``."""
    summary = {name: getattr(getattr(args, name), "value", getattr(args, name)) for name in REPORTED_TRAINING_ARGS}
    summary["world_size"] = args.world_size
    return {**summary, **more}


def finish(trainer: Trainer) -> None:
    """End the run cleanly on every process: wait for the main one's last writes, then close the process group.

    gloo frees each finished collective on its worker thread, and freeing one needs the GIL. The group itself is
    torn down when the DDP model is freed, joining those threads while this one holds the GIL: if a worker is still
    freeing the last collective then, the process hangs (seen: ``~ProcessGroupGloo`` joining a worker stuck in
    ``~AsyncBarrierWork``) or aborts ("terminate called without an active exception"). A pause after the last
    collective lets the workers finish first."""
    trainer.accelerator.wait_for_everyone()
    if trainer.args.world_size > 1:
        time.sleep(0.5)
    trainer.accelerator.end_training()
