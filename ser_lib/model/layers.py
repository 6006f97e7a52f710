"""The layers of the model: the spectrogram branch, frame pooling, positions, attention or mean pooling."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from ..data.features import LogMel
from ..errors import ConfigError

#: How the frames become one vector: learnt attention weights, or the plain average of the real frames.
POOLINGS = ("attention", "mean")

if TYPE_CHECKING:
    from .ser_model import ModelConfig


def lengths_to_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(batch, frames)``: True on the first ``lengths`` frames of each row."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its mask drawn by ``torch.rand_like``: on a CPU, ``bernoulli_`` draws element by
    element, and dropout forward and backward take about twice as long (12.8 against 7.0 ms for
    ``(16, 75, 768)``, the transformer's feed-forward activations)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep.mul_(1.0 / (1.0 - self.p))


def with_fast_dropout(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.Dropout`` inside it (a transformer layer's own too) a :class:`Dropout`."""
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p, child.inplace))
        else:
            with_fast_dropout(child)
    return module


class HalveBands(nn.Module):
    """Max over each pair of neighbouring frequency rows of ``(batch, channels, bands, frames)``, as
    ``nn.MaxPool2d((2, 1))``, whose CPU kernel is about 30 times slower for this shape. A max over a
    dimension of the pairs: its backward is one scatter, half the time of ``torch.maximum``'s on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        even = x.shape[2] // 2 * 2
        return x[:, :, :even].unflatten(2, (-1, 2)).max(dim=3).values


class SpectrogramBranch(nn.Module):
    """Log-mel (:class:`~ser_lib.data.features.LogMel`) -> normalisation -> CNN -> per-frame projection.

    Time is downsampled only by strided convolutions (which see zeros beyond a clip's end, like its
    zeroed padding), frequency by max-pooling, so padding never leaks into a clip's frames.
    """

    def __init__(self, config: "ModelConfig"):
        super().__init__()
        self.config = config
        self.front_end = LogMel(config.mel)
        blocks, channels = [], 1
        for out, stride in zip(config.cnn_channels, config.cnn_time_strides):
            blocks.append(nn.ModuleDict({
                "conv": nn.Conv2d(channels, out, 3, stride=(1, stride), padding=1, bias=False),
                "norm": nn.BatchNorm2d(out),
                "pool": HalveBands(),
            }))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        bands = config.mel.n_mels // 2 ** len(config.cnn_channels)
        if bands < 1:
            raise ConfigError(f"{len(config.cnn_channels)} CNN blocks halve {config.mel.n_mels} mel bands to nothing")
        self.proj = nn.Linear(channels * bands, config.d_model)

    def log_mel(self, wave: torch.Tensor, lengths: torch.Tensor, mel_mean: torch.Tensor | None = None,
                mel_std: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised log-mel ``(batch, n_mels, frames)`` with padded frames set to 0, and lengths.

        ``mel_mean``/``mel_std`` ``(batch, n_mels)`` come from the input normaliser (the training
        data's or the speaker's statistics); without them the log-mel is left unnormalised.
        """
        spec = self.front_end(wave)
        if mel_mean is not None:
            spec = (spec - mel_mean.float()[:, :, None]) / mel_std.float()[:, :, None]
        frame_lengths = self.front_end.frame_lengths(lengths)
        mask = lengths_to_mask(frame_lengths, spec.shape[-1])
        return spec * mask[:, None, :], frame_lengths

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor, spec_augment: Callable | None = None,
                mel_mean: torch.Tensor | None = None, mel_std: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        spec, frames = self.log_mel(wave, lengths, mel_mean, mel_std)
        if spec_augment is not None:
            spec = spec_augment(spec, frames)
        x = spec[:, None]  # (batch, 1, mels, frames)
        for block, stride in zip(self.blocks, self.config.cnn_time_strides):
            x = torch.nn.functional.gelu(block["norm"](block["conv"](x)))
            x = block["pool"](x)
            frames = (frames + stride - 1) // stride
            x = x * lengths_to_mask(frames, x.shape[-1])[:, None, None, :].to(x.dtype)
        batch, channels, bands, time = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, time, channels * bands)
        return self.proj(x), frames


def masked_avg_pool(x: torch.Tensor, lengths: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average every ``factor`` frames of ``(batch, frames, d)`` over real frames only."""
    mask = lengths_to_mask(lengths, x.shape[1]).to(x.dtype)[:, :, None]
    pad = (-x.shape[1]) % factor
    summed = torch.nn.functional.pad(x * mask, (0, 0, 0, pad)).unflatten(1, (-1, factor)).sum(2)
    counts = torch.nn.functional.pad(mask, (0, 0, 0, pad)).unflatten(1, (-1, factor)).sum(2)
    return summed / counts.clamp(min=1), (lengths + factor - 1) // factor


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine position encodings added to ``(batch, frames, d)``."""

    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__()
        position = torch.arange(max_len)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting():  # a traced graph states the bound instead of testing it
            torch._check(x.shape[1] <= self.table.shape[0])
        elif x.shape[1] > self.table.shape[0]:
            raise ConfigError(f"clip too long for the model: {x.shape[1]} frames (max {self.table.shape[0]}); "
                              f"lower --max_seconds")
        return x + self.table[: x.shape[1]].to(x.dtype)[None]


class AttentionPooling(nn.Module):
    """Multi-head attention pooling: each head weighs frames (softmax over real frames only) and
    averages its slice of the features; heads are concatenated."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, heads))
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Sequential(Dropout(dropout), nn.Linear(d_model, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, d = x.shape
        scores = self.score(x).float().masked_fill(~mask[:, :, None], float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (batch, frames, heads)
        values = self.value(x).view(batch, frames, self.heads, d // self.heads)
        pooled = torch.einsum("bth,bthe->bhe", weights.to(values.dtype), values).reshape(batch, d)
        return self.out(pooled), weights.transpose(1, 2)


class MeanPooling(nn.Module):
    """The average of the real frames (the baseline attention pooling is compared with); its weights,
    uniform over real frames, are repeated for ``heads`` so both poolings return the same shapes."""

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = mask.to(x.dtype) / mask.sum(1, keepdim=True).clamp(min=1).to(x.dtype)  # (batch, frames)
        pooled = torch.einsum("bt,btd->bd", weights, x)
        return pooled, weights[:, None, :].expand(-1, self.heads, -1)
