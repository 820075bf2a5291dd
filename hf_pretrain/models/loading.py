"""The model to pretrain: a config from the model type, a config file, the width and depth flags and
``--config_overrides`` (as ``run_mlm.py`` builds it), or a checkpoint to continue from; then the architecture's
training-time class. Checks that make a bad checkpoint, config or tokenizer a one-line error, not a crash in torch."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from typing import Any

from transformers import AutoConfig, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_MAPPING_NAMES,
)

from ..data.tokenizer import BERT_SPECIALS, SpecialTokens
from ..errors import HfPretrainError
from ..runtime.hub_access import require_hub
from .architectures import Architecture, architecture_for, architecture_names
from .arguments import ModelArguments
from .heads import PretrainingForward, TrainingOnlyModules, with_training_modules

logger = logging.getLogger(__name__)

WIDTH_AND_DEPTH = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                   "max_position_embeddings")


def checkpoint_error(path: str, err: Exception, use_safetensors: bool) -> HfPretrainError:
    """Why ``--model_name_or_path`` did not load, in one line, with the way out when only pickled weights exist."""
    hint = ""
    if use_safetensors and os.path.isfile(os.path.join(path, "pytorch_model.bin")):
        hint = "; it has pickled weights only (pytorch_model.bin): pass --use_safetensors false if you trust it"
    return HfPretrainError(f"--model_name_or_path {path}: cannot load it ({str(err).splitlines()[0]}){hint}")


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, where: str) -> None:
    """A tokenizer whose ids run past the model's embedding table would crash deep inside torch: refuse it now."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise HfPretrainError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
            f"{embeddings}; use the tokenizer saved with the checkpoint"
        )


def parse_config_overrides(overrides: str | None, defaults: dict[str, Any], model_type: str) -> dict[str, Any]:
    """``"hidden_size=256,num_hidden_layers=4"`` as typed values, each cast to its default's type; a key the
    model type's config does not have is a one-line error."""
    values: dict[str, Any] = {}
    for item in filter(None, (overrides or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            known = ", ".join(sorted(k for k, v in defaults.items() if isinstance(v, (int, float, str, bool))))
            raise HfPretrainError(
                f"--config_overrides: '{key}' is not a field of the {model_type} config"
                + ("" if sep else " (write key=value)") + f"; its fields: {known}"
            )
        default, raw = defaults[key], raw.strip()
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false"):
                    raise ValueError(raw)
                values[key] = raw.lower() == "true"
            elif isinstance(default, int):
                values[key] = int(raw)
            elif isinstance(default, float):
                values[key] = float(raw)
            else:
                values[key] = None if raw.lower() == "none" else raw
        except ValueError:
            raise HfPretrainError(
                f"--config_overrides: {key}={raw} is not a {type(default).__name__}"
            ) from None
    return values


def build_config(
    args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, default_model_type: str = "bert"
) -> PretrainedConfig:
    """A fresh model's config: ``--config_name`` or the model type's defaults, then the width, depth and dropout
    flags that are set, then ``--config_overrides``, then what the tokenizer decides (vocabulary, special ids)."""
    if args.config_name:
        require_hub(f"--config_name {args.config_name}", "pass a local config.json or folder", name=args.config_name)
        try:
            base = AutoConfig.from_pretrained(args.config_name, trust_remote_code=args.trust_remote_code)
        except (OSError, ValueError) as err:
            raise HfPretrainError(f"--config_name {args.config_name}: cannot load it ({str(err).splitlines()[0]})") from None
        model_type = base.model_type
    else:
        model_type = args.model_type or default_model_type
        try:
            base = AutoConfig.for_model(model_type)
        except ValueError:
            raise HfPretrainError(f"--model_type {model_type}: not a model type transformers knows") from None
    architecture = architecture_for(model_type)
    defaults = {**(architecture.construction_fields if architecture else {}), **base.to_dict()}
    values: dict[str, Any] = {k: v for k, v in base.to_dict().items() if k not in ("layer_types", "transformers_version")}
    aliases = getattr(base, "attribute_map", {})  # GPT-2 calls hidden_size n_embd, num_hidden_layers n_layer...
    for flag in WIDTH_AND_DEPTH:
        if getattr(args, flag) is not None:
            values[aliases.get(flag, flag)] = getattr(args, flag)
    if args.hidden_size is not None or args.num_attention_heads is not None:
        # Fields the config derives from width and heads at construction (Llama's head_dim and grouped-query
        # heads): derived again from the new ones, unless --config_overrides sets them.
        values.pop("head_dim", None)
        if "num_key_value_heads" in values:
            values["num_key_value_heads"] = values.get("num_attention_heads")
    if args.hidden_size and args.intermediate_size is None and "intermediate_size" in defaults:
        # Keep the architecture's feed-forward ratio (4 for BERT, 1.5 for ModernBERT's GLU).
        values["intermediate_size"] = round(args.hidden_size * defaults["intermediate_size"] / defaults["hidden_size"])
    dropout_fields = architecture.dropout_fields if architecture else {
        "hidden_dropout_prob": ("hidden_dropout_prob",), "attention_probs_dropout_prob": ("attention_probs_dropout_prob",)
    }
    for flag, fields in dropout_fields.items():
        if getattr(args, flag) is not None:
            values.update({name: getattr(args, flag) for name in fields if name in defaults})
    values.update(parse_config_overrides(args.config_overrides, defaults, model_type))
    values["vocab_size"] = len(tokenizer)
    values.update(architecture.token_ids(tokenizer) if architecture else {"pad_token_id": tokenizer.pad_token_id})
    values.pop("model_type", None)
    config = AutoConfig.for_model(model_type, **values)
    if args.attn_implementation:  # every model built from this config, a training model's generator too
        config._attn_implementation = args.attn_implementation

    heads, width = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    if heads and width and width % heads:
        raise HfPretrainError(f"hidden_size {width} is not a multiple of num_attention_heads {heads}")
    offset = architecture.position_offset(config) if architecture else 0
    longest = getattr(config, "max_position_embeddings", None)
    if longest is not None and max_seq_length + offset > longest:
        raise HfPretrainError(
            f"--max_seq_length {max_seq_length} exceeds what --max_position_embeddings {longest} allows"
            + (f" ({model_type} positions start at {offset})" if offset else "")
        )
    return config


def longest_sequence(config: PretrainedConfig) -> int | None:
    """The most tokens a model of ``config`` takes in one sequence: its position table less the position ids its
    architecture skips (RoBERTa's start at ``pad_token_id + 1``); None if it has no such limit."""
    longest = getattr(config, "max_position_embeddings", None)
    if longest is None:
        return None
    architecture = architecture_for(config.model_type)
    return longest - (architecture.position_offset(config) if architecture else 0)


def resolve_model_type(args: ModelArguments, default_model_type: str = "bert") -> str:
    """The model type a run trains: the checkpoint's or config file's, else ``--model_type``, else the default."""
    source = args.model_name_or_path or args.config_name
    if source:
        flag = "--model_name_or_path" if args.model_name_or_path else "--config_name"
        require_hub(f"{flag} {source}", "pass a local checkpoint folder", name=source)
        try:
            return AutoConfig.from_pretrained(source, trust_remote_code=args.trust_remote_code).model_type
        except (OSError, ValueError) as err:
            raise HfPretrainError(f"{flag} {source}: cannot load its config ({str(err).splitlines()[0]})") from None
    return args.model_type or default_model_type


# The model types with each head an objective trains, from transformers' public name tables of its Auto classes,
# and the ones a refusal suggests.
HEADS = {"masked-LM": MODEL_FOR_MASKED_LM_MAPPING_NAMES, "causal-LM": MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
         "encoder": MODEL_MAPPING_NAMES}
SUGGESTED = {"masked-LM": "bert, roberta, modernbert, electra", "causal-LM": "llama, gpt2, qwen2",
             "encoder": "bert, roberta, modernbert"}


def check_model_type(args: ModelArguments, default_model_type: str, head: str, objective: str) -> str:
    """The model type a run trains, checked before any data work: one transformers knows, with the ``head`` the
    objective trains (a gpt2 has no masked-LM head), and the one ``--model_type`` names if ``--config_name``
    gives a config too."""
    model_type = resolve_model_type(args, default_model_type)
    if args.config_name and args.model_type and args.model_type != model_type:
        raise HfPretrainError(f"--config_name {args.config_name} is a {model_type} config and --model_type says "
                              f"{args.model_type}: drop one of them")
    if model_type not in CONFIG_MAPPING_NAMES:
        raise HfPretrainError(f"--model_type {model_type}: not a model type transformers knows")
    if model_type not in HEADS[head]:
        raise HfPretrainError(f"--objective {objective} trains a {head} model, and transformers has no {head} class "
                              f"for {model_type}: choose a model type that has one ({SUGGESTED[head]}, ...)")
    return model_type


def tokenizer_spec(args: ModelArguments, default_model_type: str = "bert") -> tuple[str, SpecialTokens]:
    """The tokenizer to train for this model: ``--tokenizer_type`` or the architecture's own, with its special
    tokens (WordPiece and BERT's for a model type hf_pretrain has no architecture for)."""
    architecture = architecture_for(resolve_model_type(args, default_model_type))
    kind = architecture.tokenizer_type if architecture else "wordpiece"
    return args.tokenizer_type or kind, architecture.special_tokens if architecture else BERT_SPECIALS


def _training_class(architecture: Architecture | None, model_type: str, with_nsp: bool, objective: str,
                    training_modules: type[TrainingOnlyModules] | None = None):
    if with_nsp and (architecture is None or architecture.pretraining is None):
        raise HfPretrainError(
            f"--objective {objective} needs a next-sentence head, which {model_type} has none of: use --objective mlm"
        )
    if architecture is None or architecture.masked_lm is None:
        if training_modules:
            raise HfPretrainError(f"--objective {objective} needs an architecture hf_pretrain knows "
                                  f"({', '.join(architecture_names())}), not {model_type}")
        return None
    if training_modules:
        return with_training_modules(training_modules, architecture.masked_lm)
    return architecture.pretraining if with_nsp else architecture.masked_lm


def load_or_build(
    args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int,
    model_class: Callable[[PretrainedConfig], type[PreTrainedModel] | None], default_model_type: str = "bert",
    fallback: type = AutoModelForMaskedLM,
) -> PreTrainedModel:
    """The model a run trains: ``--model_name_or_path`` loaded (with ``--config_overrides``; a failure is one line,
    a tokenizer larger than its embeddings refused), or a fresh one from :func:`build_config`; either way as
    ``model_class(config)``, or the ``fallback`` Auto class where that gives None."""
    attention = {"attn_implementation": args.attn_implementation} if args.attn_implementation else {}
    if not args.model_name_or_path:
        config = build_config(args, tokenizer, max_seq_length, default_model_type)
        cls = model_class(config)
        return cls(config) if cls else fallback.from_config(config)
    path = args.model_name_or_path
    require_hub(f"--model_name_or_path {path}", "pass a local checkpoint folder", name=path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=args.trust_remote_code)
        overrides = parse_config_overrides(args.config_overrides, config.to_dict(), config.model_type)
        model = (model_class(config) or fallback).from_pretrained(
            path, use_safetensors=args.use_safetensors, trust_remote_code=args.trust_remote_code, **attention,
            **overrides,
        )
    except (OSError, ValueError, pickle.UnpicklingError) as err:  # the last: a pickle weights_only refused
        raise checkpoint_error(path, err, args.use_safetensors) from None
    check_vocabulary(model, tokenizer, f"--model_name_or_path {path}")
    return model


def build_pretraining_model(
    args: ModelArguments,
    tokenizer: PreTrainedTokenizerBase,
    with_nsp: bool,
    max_seq_length: int,
    sparse_prediction: bool = True,
    isolate_documents: bool = False,
    default_model_type: str = "bert",
    objective: str = "mlm_nsp",
    training_modules: type[TrainingOnlyModules] | None = None,
) -> PreTrainedModel:
    """The model to pretrain, as its architecture's training-time class (sparse prediction, document isolation; it
    saves as the stock class): fresh from :func:`build_config`, or continued from ``--model_name_or_path``.
    A model type with no registered architecture trains as its stock ``AutoModelForMaskedLM`` class.
    ``training_modules`` adds an objective's training-only modules and forward pass to the masked LM (SpanBERT's
    span boundary network, :mod:`.span_boundary`; the token-matching head, :mod:`.token_match`)."""

    def training_class(config):
        return _training_class(architecture_for(config.model_type), config.model_type, with_nsp, objective,
                               training_modules)

    model = load_or_build(args, tokenizer, max_seq_length, training_class, default_model_type)
    if isinstance(model, PretrainingForward):
        model.sparse_prediction = sparse_prediction
    else:
        if isolate_documents:
            raise HfPretrainError(
                f"--isolate_documents needs an architecture hf_pretrain knows ({', '.join(architecture_names())}); "
                f"{model.config.model_type} trains as its stock class"
            )
        logger.info("%s trains as its stock class: no sparse prediction", model.config.model_type)
    return model
