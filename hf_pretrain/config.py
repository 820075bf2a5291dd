"""Parse a YAML preset plus command-line overrides into typed argument dataclasses.

The preset gives defaults, flags on the command line override them, and a key that no dataclass knows is an error,
in the file as on the command line. Validation errors raised by a dataclass's ``__post_init__`` (ours or
``TrainingArguments``') become one-line :class:`HfPretrainError`s.
"""

from __future__ import annotations

import argparse
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
from .runtime.precision import choose_bf16

logger = logging.getLogger(__name__)


class _PresetLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (a preset is data, never code) that refuses a key given twice: YAML would
    silently keep the last one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Parser(HfArgumentParser):
    """``HfArgumentParser`` whose errors are one-line ``HfPretrainError``s, not a page of usage, and whose ``--help``
    prints help texts as written: argparse reads a help's ``%`` as a format code ("30 % of lines" crashed it)."""

    def __init__(self, dataclass_types, **kwargs) -> None:
        super().__init__(dataclass_types, **kwargs)
        for action in self._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                action.help = action.help.replace("%", "%%")

    def error(self, message: str):
        raise HfPretrainError(message)


def _load_preset(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise HfPretrainError(f"--config {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            preset = yaml.load(f, Loader=_PresetLoader) or {}
    except UnicodeDecodeError as err:
        raise HfPretrainError(f"{path}: not UTF-8 text (byte {err.start}); save the preset as UTF-8") from None
    except yaml.YAMLError as err:
        raise HfPretrainError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    if not isinstance(preset, dict):
        raise HfPretrainError(f"{path}: a preset must be a mapping of argument names to values")
    return preset


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_preset_type(path: str, key: str, value: Any, parser: HfArgumentParser, declared: str) -> Any:
    """A preset value of the wrong type (a list for a number, text for a flag) would surface deep inside training:
    name the key. Strings go through the flag's own parsing, as on the command line; one string where a list is
    expected is a list of one. Returns the value to use."""
    action = next(a for a in parser._actions if a.dest == key)
    expected = action.type
    if action.nargs in ("+", "*") and isinstance(value, str):
        return [value]
    if isinstance(value, str) and expected in (int, float):
        try:
            expected(value)
        except ValueError:
            raise HfPretrainError(f"{path}: '{key}' must be {expected.__name__}, not {value!r}") from None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        ok = "dict" in declared
    elif action.nargs in ("+", "*"):
        ok = isinstance(value, list)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif getattr(expected, "__name__", "") == "string_to_bool" or isinstance(action.const, bool):
        ok = isinstance(value, bool)
    else:
        ok = not isinstance(value, list)
    if not ok:
        wanted = "a list" if action.nargs in ("+", "*") else getattr(expected, "__name__", "a value").replace(
            "string_to_bool", "true or false")
        raise HfPretrainError(f"{path}: '{key}' must be {wanted}, not {value!r}")
    return value


def _check_training_values(values: dict[str, Any]) -> None:
    """TrainingArguments values that transformers accepts but that make a silent wrong run or a crash later."""
    for flag in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if flag in values and values[flag] is not None and values[flag] < 1:
            raise HfPretrainError(f"--{flag} must be at least 1, not {values[flag]}")
    if "max_steps" in values and values["max_steps"] < -1 or values.get("max_steps") == 0:
        raise HfPretrainError(
            f"--max_steps must be positive, or -1 to train --num_train_epochs, not {values['max_steps']}"
        )
    if values.get("max_steps") == -1 and "num_train_epochs" in values and values["num_train_epochs"] <= 0:
        # The Trainer would save the untrained model as if trained (and GLUE report its metrics).
        raise HfPretrainError(f"--num_train_epochs must be positive, not {values['num_train_epochs']:g}: a run of no "
                              "epochs trains nothing; pass --num_train_epochs or --max_steps")
    seeds = {"seed": [values.get("seed")], "data_seed": [values.get("data_seed")], "seeds": values.get("seeds") or []}
    for flag, given in seeds.items():
        for seed in given:
            if seed is not None and not 0 <= seed < 2**32:  # numpy's and torch's seeding both take [0, 2**32)
                raise HfPretrainError(f"--{flag} must be an integer in [0, 2**32), not {seed}")
    if "report_to" in values:
        _check_report_to(values["report_to"])


def _check_report_to(report_to: Any) -> None:
    """``--report_to``: each name an integration transformers has and this environment has installed, said now
    rather than by the Trainer after the data work."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    names = [report_to] if isinstance(report_to, (str, int, float)) else list(report_to or [])
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise HfPretrainError(f"--report_to {name!r}: not an integration transformers has; use one of "
                                  f"{', '.join(INTEGRATION_TO_CALLBACK)}, or none")
        if name not in get_available_reporting_integrations():
            raise HfPretrainError(f"--report_to {name}: the {name} package is not installed; install it, or pass "
                                  "--report_to none")


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


def _auto_bf16(preset: dict[str, Any], argv: list[str]) -> tuple[bool, list[str]]:
    """Whether ``--bf16 auto`` (a flag) or ``bf16: auto`` (the preset, unless a flag sets it) asks for the precision
    to be chosen on this device; the 'auto' value is taken out, since the flag itself is a boolean."""
    for i, arg in enumerate(argv):
        if arg == "--bf16=auto":
            return True, argv[:i] + argv[i + 1:]
        if arg == "--bf16" and argv[i + 1 : i + 2] == ["auto"]:
            return True, argv[:i] + argv[i + 2:]
    if preset.get("bf16") != "auto":
        return False, argv
    del preset["bf16"]
    return not any(arg == "--bf16" or arg.startswith("--bf16=") for arg in argv), argv


def peek_setting(name: str, argv: Sequence[str] | None = None, many: bool = False) -> Any:
    """The value ``--name`` has on the command line, else in the ``--config`` preset, else None: what a recipe
    needs to know before it chooses the argument classes to parse (``--objective``, ``--plugins``). ``many``: a
    list flag, every value up to the next flag."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, argv = _split_config_flag(argv)
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and many:
            values = argv[i + 1:]
            return values[:next((j for j, value in enumerate(values) if value.startswith("--")), len(values))]
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return _load_preset(config_path).get(name) if config_path is not None else None


def _foreign(key: str, owners: dict[str, str], run: str) -> str:
    return f"--{key} is a flag of --objective {owners[key]}, and this run trains {run}: drop it, or train that objective"


def parse_config(
    dataclass_types: Sequence[type], argv: Sequence[str] | None = None, defaults: dict[str, Any] | None = None,
    others: dict[str, str] | None = None, run: str = "another",
) -> tuple[Any, ...]:
    """Build one instance of each dataclass from ``--config PRESET.yaml`` and the command-line flags.

    ``argv`` defaults to ``sys.argv[1:]``. Flags use the dataclass field names, so every
    ``TrainingArguments`` flag works as it does in the Hugging Face example scripts. ``defaults`` (a recipe's
    own) come before the preset's, which come before the flags. ``others`` maps the flags of argument classes this
    run does not parse (another objective's) to their owner, so that one given is refused naming it (``run``
    says what the run trains).
    """
    others = others or {}
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, argv = _split_config_flag(argv)
    parser = _Parser(dataclass_types)
    known = sorted({action.dest for action in parser._actions if action.dest != "help"})
    if defaults:
        parser.set_defaults(**defaults)

    preset = _load_preset(config_path) if config_path is not None else {}
    auto_bf16, argv = _auto_bf16(preset, argv)
    if config_path is not None:
        # The annotations as written (HfArgumentParser narrows its fields' types to what argparse parses).
        declared = {name: str(kind) for dtype in dataclass_types for cls in reversed(dtype.__mro__)
                    for name, kind in vars(cls).get("__annotations__", {}).items()}
        for key, value in preset.items():
            if key in others and key not in known:
                raise HfPretrainError(f"{config_path}: {_foreign(key, others, run)}")
            if key not in known:
                raise HfPretrainError(f"{config_path}: unknown key '{key}'{_suggest(key, known)}")
            preset[key] = _check_preset_type(config_path, key, value, parser, declared.get(key, ""))
        parser.set_defaults(**preset)

    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        if flag.startswith("--") and flag[2:] in others:
            raise HfPretrainError(_foreign(flag[2:], others, run))
        hint = _suggest(flag.lstrip("-"), known)
        raise HfPretrainError(f"unknown argument {flag}{hint}")
    values = vars(namespace)
    if auto_bf16 and "bf16" in values:
        values["bf16"], reason = choose_bf16()
        # A warning, not info: the recipe sets up logging only after parsing, and which precision a run trains in
        # (measured here, so it can differ between machines) should never go unsaid.
        logger.warning("--bf16 auto: %s", reason)
    _place_without_accelerator(values)
    _check_training_values(values)

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
