"""The private names of transformers and torch that hf_pretrain relies on where no public way serves, each pinned
here: if an upgrade stops honouring one, a test names it, rather than a run misbehaving quietly.

- ``config._attn_implementation`` (models/loading.py sets it, models/attention.py reads it): below.
- ``lr_scheduler.state_dict()["_last_lr"]`` (training/callbacks.py, LearningRateOnResumeCallback): below.
- ``model._keys_to_ignore_on_save`` (training/trainer.py): Trainer does not warn about tied weights missing from a
  checkpoint when they are listed there; below, and end to end in test_faults.py (a resume logs no missing keys).
- ``_tied_weights_keys`` as a dict (models/electra.py): test_electra.py ties, saves once and reloads them.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, Trainer, TrainingArguments, get_linear_schedule_with_warmup

from hf_pretrain.models.attention import document_attention_masks
from hf_pretrain.training.callbacks import LearningRateOnResumeCallback

pytestmark = pytest.mark.unit

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16)


def test_attn_implementation_set_on_a_config_is_the_one_the_model_and_our_masks_use():
    config = BertConfig(**TINY)
    config._attn_implementation = "eager"
    model = BertForMaskedLM(config)
    assert model.config._attn_implementation == "eager"
    masks = document_attention_masks(model.config, torch.tensor([[0, 0, 1]]), None, torch.float32)
    # eager attention takes an additive float mask: 0 within a document, very negative across documents.
    full = masks["full_attention"][0, 0]
    assert full.dtype == torch.float32 and full[0, 1] == 0 and full[0, 2] < -1e30


def test_a_scheduler_reports_the_last_rate_from_its_state_dict_key():
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 10)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert "_last_lr" in scheduler.state_dict()
    LearningRateOnResumeCallback().on_train_begin(
        SimpleNamespace(learning_rate=1e-4), SimpleNamespace(global_step=3), None, optimizer=optimizer,
        lr_scheduler=scheduler,
    )
    assert scheduler.base_lrs == [1e-4]
    assert scheduler.get_last_lr() == pytest.approx([1e-4 * 7 / 10])  # what Trainer logs next: the new peak's
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 6 / 10)


@pytest.fixture
def transformers_logs(caplog):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_propagation()  # transformers' loggers do not reach pytest's capture otherwise
    yield caplog
    hf_logging.disable_propagation()


def test_trainer_keeps_quiet_about_missing_keys_listed_to_ignore(tmp_path, transformers_logs):
    caplog = transformers_logs
    model = BertForMaskedLM(BertConfig(**TINY))  # its decoder is tied to the embeddings: saved once
    trainer = Trainer(model=model, args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True))
    state = {k: v for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["cls.predictions.decoder.weight"]
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(result)
    assert "missing keys" in caplog.text.lower()
    caplog.clear()
    model._keys_to_ignore_on_save = {"cls.predictions.decoder.weight"}
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(result)
    assert "missing keys" not in caplog.text.lower()
