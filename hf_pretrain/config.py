"""Parse a YAML preset plus command-line overrides into typed argument dataclasses.

The preset gives defaults, flags on the command line override them, and a key that no dataclass knows is an error,
in the file as on the command line. Validation errors raised by a dataclass's ``__post_init__`` (ours or
``TrainingArguments``') become one-line :class:`HfPretrainError`s.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import sys
from typing import Any, Sequence

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from .errors import HfPretrainError

logger = logging.getLogger(__name__)


def _load_preset(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise HfPretrainError(f"--config {path}: no such file")
    with open(path, encoding="utf-8") as f:
        try:
            # safe_load: a preset is data, never code.
            preset = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise HfPretrainError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    if not isinstance(preset, dict):
        raise HfPretrainError(f"{path}: a preset must be a mapping of argument names to values")
    return preset


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _split_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    rest, config = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise HfPretrainError("--config needs a path to a YAML preset")
            config, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return config, rest


def _place_without_accelerator(values: dict[str, Any]) -> None:
    """Without any accelerator (no CUDA, MPS, XPU...): refuse fp16, and run on the CPU explicitly.

    ``use_cpu`` is what lets TrainingArguments accept bf16 on the CPU and join a multi-process CPU group
    (torchrun + gloo) as a distributed run rather than as independent single processes. It is set only where
    the CPU is the sole device, so Apple MPS and other accelerators are used as transformers would use them.
    """
    if "use_cpu" not in values or values["use_cpu"] or torch.accelerator.is_available():
        return
    if values.get("fp16"):
        raise HfPretrainError(
            "--fp16 needs a GPU and none is available; use --bf16 for mixed precision on the CPU, or drop the flag"
        )
    logger.info("no accelerator found: training on the CPU (use_cpu=True)")
    values["use_cpu"] = True


def parse_config(
    dataclass_types: Sequence[type], argv: Sequence[str] | None = None, defaults: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """Build one instance of each dataclass from ``--config PRESET.yaml`` and the command-line flags.

    ``argv`` defaults to ``sys.argv[1:]``. Flags use the dataclass field names, so every
    ``TrainingArguments`` flag works as it does in the Hugging Face example scripts. ``defaults`` (a recipe's
    own) come before the preset's, which come before the flags.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, argv = _split_config_flag(argv)
    parser = HfArgumentParser(dataclass_types)
    known = sorted({action.dest for action in parser._actions if action.dest != "help"})
    if defaults:
        parser.set_defaults(**defaults)

    if config_path is not None:
        preset = _load_preset(config_path)
        for key in preset:
            if key not in known:
                raise HfPretrainError(f"{config_path}: unknown key '{key}'{_suggest(key, known)}")
        parser.set_defaults(**preset)

    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        hint = _suggest(flag.lstrip("-"), known)
        raise HfPretrainError(f"unknown argument {flag}{hint}")
    values = vars(namespace)
    _place_without_accelerator(values)

    outputs = []
    for dtype in dataclass_types:
        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        try:
            args = dtype(**{k: v for k, v in values.items() if k in names})
        except (ValueError, TypeError) as err:
            raise HfPretrainError(str(err).strip().replace("\n", " ")) from None
        if isinstance(args, TrainingArguments):
            # Joins the process group now: until then world_size and process_index read 1 and 0 on every rank.
            args.device  # noqa: B018
        outputs.append(args)
    return tuple(outputs)
