"""A moving average of a model's weights over the last epochs of training.

The weights of one optimisation step sit wherever the last batches left them; their average over the
last epochs lies nearer the middle of a flat region of the loss. Flat minima hold better on data
unlike the training data, such as another corpus's voices and rooms (Izmailov et al. 2018, stochastic
weight averaging; Cha et al. 2021, SWAD, for domain generalisation). Training goes on with the raw
weights; the average is what is validated and saved (``--average_epochs N``) from epoch 2N on, when
the first, untrained weights weigh little in it; until then the raw weights are.
"""
from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An exponential moving average of ``model``'s trainable weights and float buffers.

    ``horizon`` is its time constant in optimisation steps (at least one: a shorter one is one, the
    raw weights). Until that many steps have been averaged, the average is the plain mean of the steps
    so far (the first weights do not linger). It is worth saving from ``start`` updates on (twice the
    horizon; optimiser steps taken, so under float16 the few the scaler skips are not counted). Frozen
    weights are shared with ``model``, not copied (a frozen pretrained encoder is held once);
    :meth:`differing` names the entries that are not.
    """

    def __init__(self, model: torch.nn.Module, horizon: float):
        shared = {id(p): p for p in model.parameters() if not p.requires_grad}
        self.model = copy.deepcopy(model, memo=dict(shared)).eval()
        self.model.requires_grad_(False)
        self._shared = {name for name, p in self.model.named_parameters(remove_duplicate=False) if id(p) in shared}
        self.horizon = max(1.0, float(horizon))
        self.start = 2 * self.horizon
        self.updates = 0

    @property
    def ready(self) -> bool:
        """Whether the average is worth saving: from twice its horizon on, when the steps of its first
        horizon (training's untrained start) weigh less than 1/e in it."""
        return self.updates >= self.start

    def decay(self) -> float:
        """How much the average keeps of itself at the next update."""
        return min(1.0 - 1.0 / self.horizon, self.updates / (self.updates + 1))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold ``model``'s current weights (the same architecture) into the average."""
        keep = self.decay()
        for mine, theirs in zip(self.model.parameters(), model.parameters(), strict=True):
            if theirs.requires_grad:  # frozen weights never change: nothing to average
                mine.lerp_(theirs.detach().to(mine.dtype), 1.0 - keep)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            if mine.dtype.is_floating_point:
                mine.lerp_(theirs.to(mine.dtype), 1.0 - keep)
            else:
                mine.copy_(theirs)
        self.updates += 1

    @torch.no_grad()
    def broadcast_buffers(self) -> None:
        """Every process's average takes process 0's buffers (under data parallelism each process's
        batch-norm statistics follow its own batches; the weights are the same everywhere)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def differing(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The entries of a ``state_dict`` (of the raw model or the average) that the two do not share."""
        return {key: value for key, value in state.items() if key not in self._shared}

    def state_dict(self) -> dict:
        return {"state_dict": self.model.state_dict(), "updates": self.updates, "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        """Restore an average; one saved before ``start`` existed was saved from the first step on (and
        goes on so, for the resumed run to be the same run)."""
        self.model.load_state_dict(state["state_dict"])
        self.updates = int(state["updates"])
        self.start = float(state.get("start", 0.0))
