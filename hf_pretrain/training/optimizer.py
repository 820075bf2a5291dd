"""``--use_muon``: Muon for the weight matrices of the transformer blocks, AdamW for everything else.

Muon (Jordan et al., 2024; ``torch.optim.Muon``) orthogonalizes each matrix's momentum before the update, so every
direction of a hidden map moves at the same rate, where AdamW lets a few dominate. With Moonshot's scaling
(``adjust_lr_fn="match_rms_adamw"``, Liu et al., 2025) its updates have AdamW's size, so one ``--learning_rate`` and
``--weight_decay`` serve both halves. Embeddings and the output projection (tables indexed by token, not maps between
hidden states), task heads, norms and biases stay with AdamW, as in both papers.

The two optimizers are one ``torch.optim.Optimizer`` to the Trainer: its schedule sets the rate of every group, its
checkpoints save and load both states.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import TrainingArguments

from ..errors import HfPretrainError

# Nesterov momentum 0.95 and five Newton-Schulz steps: both papers' and torch's defaults.
MUON_MOMENTUM = 0.95


def block_matrices(model: nn.Module) -> list[str]:
    """The parameter names Muon updates: the weights of the ``nn.Linear`` layers inside the model's repeated blocks
    (each ``nn.ModuleList``: BERT's ``encoder.layer``, ModernBERT's and Llama's ``layers``, an ELECTRA generator's),
    i.e. the attention and MLP projections."""
    parameters = dict(model.named_parameters())
    names = []
    for list_name, blocks in model.named_modules():
        if isinstance(blocks, nn.ModuleList):
            for name, module in blocks.named_modules(prefix=list_name):
                if isinstance(module, nn.Linear) and f"{name}.weight" in parameters:
                    names.append(f"{name}.weight")
    return sorted(set(names))


class MuonWithAdamW(torch.optim.Optimizer):
    """``torch.optim.Muon`` over ``muon_groups`` and ``torch.optim.AdamW`` over ``adamw_groups``, stepped together.

    ``param_groups`` are the two optimizers' own group dicts, so a scheduler that sets ``group["lr"]`` sets it where
    each optimizer reads it; ``state_dict`` holds both states (tensors and numbers only: loadable with
    ``weights_only``)."""

    def __init__(self, muon_groups: list[dict], adamw_groups: list[dict], lr: float, betas: tuple[float, float],
                 eps: float) -> None:
        self.muon = torch.optim.Muon(muon_groups, lr=lr, momentum=MUON_MOMENTUM, nesterov=True,
                                     adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas, eps=eps)
        super().__init__(self.muon.param_groups + self.adamw.param_groups, {})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        if set(state_dict) != {"muon", "adamw"}:
            raise HfPretrainError("this checkpoint's optimizer state is not Muon's and AdamW's (it was saved without "
                                  "--use_muon): resume with the optimizer it was trained with")
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        # Loading replaces each optimizer's group dicts: point at the new ones, which the scheduler must set.
        self.param_groups = self.muon.param_groups + self.adamw.param_groups


def muon_with_adamw(model: nn.Module, args: TrainingArguments, decayed: set[str]) -> MuonWithAdamW:
    """The optimizer ``--use_muon`` trains ``model`` with: Muon for :func:`block_matrices` (all decayed), AdamW for
    the other trainable parameters, those in ``decayed`` (the Trainer's choice: not norms, not biases) decayed."""
    matrices = set(block_matrices(model))
    if not matrices:
        raise HfPretrainError(f"--use_muon: {type(model).__name__} has no repeated blocks (nn.ModuleList) of nn.Linear "
                              "layers for Muon to update; drop --use_muon")
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    others = [(name, p) for name, p in trainable if name not in matrices]
    muon_groups = [{"params": [p for name, p in trainable if name in matrices], "weight_decay": args.weight_decay}]
    adamw_groups = [{"params": [p for name, p in others if name in decayed], "weight_decay": args.weight_decay},
                    {"params": [p for name, p in others if name not in decayed], "weight_decay": 0.0}]
    return MuonWithAdamW(muon_groups, [group for group in adamw_groups if group["params"]], args.learning_rate,
                         (args.adam_beta1, args.adam_beta2), args.adam_epsilon)
