"""``--host_sync_steps``: the run's guards read the device once every N optimizer steps, and never in between.

A read of a device value is ``aten._local_scalar_dense`` (what ``.item()`` dispatches to): on a GPU the host waits
there for the queue to drain. A dispatch mode counts those reads while the callbacks run, step by step.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import TrainerControl, TrainerState, TrainingArguments

pytestmark = pytest.mark.unit


class DeviceReads(TorchDispatchMode):
    """Counts reads of a tensor's value into Python while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _steps(callback, losses: list[float]) -> list[int]:
    """Drive ``callback`` through one optimizer step per loss (two micro-batches each, the second ``loss``);
    the device reads of each step, or the error raised (as a string) at the step it is raised."""
    from hf_pretrain.training.callbacks import StepBatches

    callback.batches = batches = StepBatches()
    args, state, control = TrainingArguments(output_dir="unused", use_cpu=True), TrainerState(), TrainerControl()
    reads = []
    for step, loss in enumerate(losses):
        state.global_step = step
        for value in (1.0, loss):
            batches.add(step, torch.tensor(value), torch.tensor([2 * step, 2 * step + 1]))
        with DeviceReads() as counted:
            callback.on_pre_optimizer_step(args, state, control)
        reads.append(counted.count)
    return reads


def test_the_nonfinite_check_reads_the_device_once_every_n_steps():
    from hf_pretrain.training.callbacks import NonFiniteLossCallback

    assert _steps(NonFiniteLossCallback(None), [2.0] * 6) == [1] * 6
    assert _steps(NonFiniteLossCallback(None, every=3), [2.0] * 6) == [0, 0, 1, 0, 0, 1]


def test_a_late_check_names_the_step_that_went_bad_and_says_its_update_was_applied():
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.training.callbacks import NonFiniteLossCallback

    with pytest.raises(HfPretrainError) as raised:
        _steps(NonFiniteLossCallback(None, every=3), [2.0, float("nan"), 2.0])
    message = str(raised.value)
    assert message.startswith("non-finite loss (nan) at step 2, batch of sequence ids [2, 3] (found at step 3:")
    assert "training stopped after its update" in message
    with pytest.raises(HfPretrainError, match="at step 2, batch of sequence ids \\[2, 3\\]; training stopped before"):
        _steps(NonFiniteLossCallback(None), [2.0, float("inf")])


def test_steps_left_unchecked_at_the_end_of_training_are_checked_then():
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.training.callbacks import NonFiniteLossCallback

    callback = NonFiniteLossCallback(None, every=4)
    assert _steps(callback, [2.0, float("nan")]) == [0, 0]
    args, state = TrainingArguments(output_dir="unused", use_cpu=True), TrainerState(global_step=2)
    with pytest.raises(HfPretrainError, match="at step 2, .*found at step 2.*after its update"):  # before the final weights are saved
        callback.on_train_end(args, state, TrainerControl())


def test_skipping_a_step_needs_every_step_checked():
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.training.arguments import RunArguments

    with pytest.raises(HfPretrainError, match="--on_nonfinite_loss skip must check every step"):
        RunArguments(on_nonfinite_loss="skip", host_sync_steps=8)
    with pytest.raises(HfPretrainError, match="--host_sync_steps must be at least 1, not 0"):
        RunArguments(host_sync_steps=0)
