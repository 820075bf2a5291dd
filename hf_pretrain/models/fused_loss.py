"""The vocabulary projection and its cross-entropy in one step, a block of rows at a time.

Much of a masked LM's head on a CPU is memory traffic rather than arithmetic: at ``budget_match``'s shapes (about
1,160 masked tokens x 16,384 words a step) the bf16 logits are cast to fp32 for the log-softmax, its output kept for
the backward pass, its gradient zero-filled, scattered and cast back to bf16, each a pass over a 19-million-entry
tensor, and the argmax for the accuracy one more. A block of rows at a time, the block's logits, log-sum-exp,
gradient and that gradient's products with the decoder's input and weight are done while the block is still near the
cache, and the full logits never exist: on one core of this project's CPU the head's forward and backward took 285 ms
instead of 426, and ``budget_match``'s whole step 0.83 s instead of 0.98 (docs/results.md, 2026-12-07). The
gradients are computed in the forward pass (the loss is a scalar: its backward only scales them); they are the
plain path's products, the weight's summed over the blocks in fp32."""

from __future__ import annotations

import torch
from torch import nn

ROWS_PER_BLOCK = 256  # 256 x 16,384 fp32 is 16 MB: a block's softmax stays near the cache; 64-512 measured within 10 %


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets):
        # Under autocast the products run in its dtype, as nn.Linear's would; the softmax in fp32, as cross_entropy's.
        dtype = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) \
            else weight.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            b = None if bias is None else bias.to(dtype)
            n = h.shape[0]
            losses = torch.empty(n, dtype=torch.float32, device=h.device)
            predictions = torch.empty(n, dtype=torch.long, device=h.device)
            grad_hidden = torch.empty_like(h)
            grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=h.device)
            grad_bias = None if bias is None else torch.zeros(bias.shape, dtype=torch.float32, device=h.device)
            for start in range(0, n, ROWS_PER_BLOCK):
                rows = slice(start, min(n, start + ROWS_PER_BLOCK))
                logits = h[rows] @ w.t() if b is None else torch.addmm(b, h[rows], w.t())
                target = targets[rows, None]
                predictions[rows] = logits.max(-1).indices  # argmax's first of equal maxima, as the metrics count
                probabilities = logits.float()
                target_logit = probabilities.gather(1, target).squeeze(1)
                largest = probabilities.amax(-1, keepdim=True)
                total = probabilities.sub_(largest).exp_().sum(-1, keepdim=True)
                losses[rows] = total.log().squeeze(1) + largest.squeeze(1) - target_logit
                # d(loss)/d(logits) of a row: its softmax less one at the target (the mean's 1/n comes in backward).
                grad_logits = probabilities.div_(total)
                grad_logits.scatter_add_(1, target, grad_logits.new_full(target.shape, -1.0))
                if grad_bias is not None:
                    grad_bias += grad_logits.sum(0)
                grad_logits = grad_logits.to(dtype)
                torch.mm(grad_logits, w, out=grad_hidden[rows])
                grad_weight += grad_logits.t() @ h[rows]
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.n, ctx.dtypes = n, (hidden.dtype, weight.dtype)
        ctx.mark_non_differentiable(predictions)
        return losses.mean(), predictions

    @staticmethod
    def backward(ctx, grad_loss, grad_predictions):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        scale = grad_loss / ctx.n
        hidden_dtype, weight_dtype = ctx.dtypes
        return (  # scaled in fp32: 1/n rounded to bf16 would scale every gradient by up to 0.4 % too much or little
            (grad_hidden.float() * scale).to(hidden_dtype),
            (grad_weight * scale).to(weight_dtype),
            None if grad_bias is None else (grad_bias * scale).to(weight_dtype),
            None,
        )


def linear_cross_entropy(hidden: torch.Tensor, decoder: nn.Linear, targets: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``cross_entropy(decoder(hidden).float(), targets)`` (the mean over the rows) and each row's argmax, without
    the ``(rows, vocabulary)`` logits. ``hidden`` is ``(rows, width)``; every target must be a class index (no
    ignored rows: select them first). Differentiable in ``hidden`` and the decoder's weight and bias."""
    return _LinearCrossEntropy.apply(hidden, decoder.weight, decoder.bias, targets)
