"""The dual-branch SER model (notebook 03 builds it up piece by piece).

::

    waveform ─┬─ pretrained encoder (wav2vec 2.0 / HuBERT / WavLM): softmax-weighted sum of all
              │  hidden layers -> linear                                         ┐  50 frames/s
              └─ log-mel (64 bands, 100 frames/s) -> CNN (time stride 2) -> linear ┘
                   -> fusion (concatenate, linear) -> context transformer
                   -> multi-head attention pooling (ignores padding)
                   -> emotion head, gender head

``backbone="none"`` gives the spectrogram-only model, the one that trains from scratch without any
download. Every stage honours the padding mask, so a clip's prediction does not depend on what else
is in its batch: the STFT frames are uncentred, padded frames are zeroed between CNN blocks, and the
first group-normalised convolution of wav2vec2-style encoders is normalised over real samples only.
"""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from .errors import BackboneError, ConfigError

log = logging.getLogger(__name__)

FREEZE_CHOICES = ("none", "feature_encoder", "backbone")
NO_BACKBONE = ("", "none", None)


@dataclass
class ModelConfig:
    """Everything needed to rebuild the model; saved with every checkpoint (plain values only)."""

    num_emotions: int = 8
    backbone: str | None = "facebook/wav2vec2-base"
    freeze: str = "feature_encoder"
    spectrogram: bool = True
    sample_rate: int = 16_000
    n_mels: int = 64
    n_fft: int = 400
    hop_length: int = 160
    cnn_channels: tuple[int, ...] = (32, 64, 128)
    cnn_time_strides: tuple[int, ...] = (2, 2, 1)  # log-mel at 100 frames/s -> 25 frames/s
    d_model: int = 192
    context_layers: int = 2
    context_heads: int = 4
    pooling_heads: int = 4
    dropout: float = 0.2
    gender_head: bool = True
    descriptor_dim: int = 0                 # clip descriptors fed beside the pooled vector (0: none)
    backbone_config: dict | None = field(default=None, repr=False)

    @property
    def has_backbone(self) -> bool:
        return self.backbone not in NO_BACKBONE

    def validate(self) -> None:
        if self.freeze not in FREEZE_CHOICES:
            raise ConfigError(f"--freeze must be one of {', '.join(FREEZE_CHOICES)}, got {self.freeze!r}")
        if not self.has_backbone and not self.spectrogram:
            raise ConfigError("the model needs a backbone or the spectrogram branch (or both)")
        if self.d_model % self.context_heads or self.d_model % self.pooling_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by the numbers of heads")
        if self.num_emotions < 2:
            raise ConfigError("the model needs at least two emotion classes")
        if len(self.cnn_time_strides) != len(self.cnn_channels):
            raise ConfigError("cnn_time_strides needs one stride per CNN block")

    @property
    def frame_stride(self) -> int:
        """Log-mel frames per output frame of the spectrogram branch."""
        return int(math.prod(self.cnn_time_strides))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cnn_channels"] = list(self.cnn_channels)
        data["cnn_time_strides"] = list(self.cnn_time_strides)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("cnn_channels", "cnn_time_strides"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


class SEROutput(NamedTuple):
    emotion_logits: torch.Tensor           # (batch, emotions)
    gender_logits: torch.Tensor | None     # (batch, 2): male, female
    attention: torch.Tensor                # (batch, pooling heads, frames): pooling weights
    frame_mask: torch.Tensor               # (batch, frames): True on real frames


# ----------------------------------------------------------------------------------------------
# Backbone
# ----------------------------------------------------------------------------------------------
def load_backbone(name_or_path: str, config_dict: dict | None = None) -> nn.Module:
    """A Hugging Face audio encoder by hub name or local folder.

    With ``config_dict`` (saved in a checkpoint) the architecture is rebuilt without fetching any
    weights: the checkpoint supplies them. Otherwise ``AutoModel.from_pretrained`` loads it, and a
    name that cannot be fetched raises :class:`BackboneError` naming the ways out.
    """
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if config_dict is not None:
        data = dict(config_dict)
        config = AutoConfig.for_model(data.pop("model_type"), **data)
        return AutoModel.from_config(config)
    path = Path(name_or_path).expanduser()
    looks_local = path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local and not path.is_dir():
        raise BackboneError(f"backbone folder {path} does not exist. " + _WAYS_OUT)
    try:
        return AutoModel.from_pretrained(str(path) if looks_local else name_or_path, local_files_only=True)
    except (OSError, ValueError) as err:
        if looks_local:
            raise BackboneError(f"cannot load a backbone from {path}: {_first_line(err)}. " + _WAYS_OUT) from None
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or not _hub_reachable():
        raise BackboneError(
            f"cannot fetch the pretrained encoder {name_or_path!r}: it is not in the local Hugging Face "
            f"cache and the hub cannot be reached (offline). " + _WAYS_OUT
        )
    try:
        return AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise BackboneError(f"cannot load the pretrained encoder {name_or_path!r}: {_first_line(err)}. "
                            + _WAYS_OUT) from None


_WAYS_OUT = (
    "Ways out: (1) on a machine with internet, run `huggingface-cli download facebook/wav2vec2-base` "
    "or save the model with `save_pretrained(DIR)`, copy it here and pass --backbone DIR; "
    "(2) with the model already in the Hugging Face cache, set HF_HUB_OFFLINE=1; "
    "(3) train the spectrogram-only model with --backbone none."
)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint resolves and accepts a connection (fails fast offline)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urllib.parse.urlsplit(endpoint).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


class _MaskedInstanceNorm(nn.GroupNorm):
    """The per-channel GroupNorm of wav2vec2-base's first convolution, over real frames only.

    Without it, zero padding shifts the per-channel statistics and a clip's features depend on the
    length of the longest clip in its batch. ``valid_frames`` is set by the model around each call.
    """

    valid_frames: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.valid_frames is None:
            return super().forward(x)
        frames = torch.arange(x.shape[-1], device=x.device)
        mask = (frames[None, :] < self.valid_frames[:, None]).to(x.dtype)[:, None, :]
        count = mask.sum(-1, keepdim=True).clamp(min=1)
        mean = (x * mask).sum(-1, keepdim=True) / count
        var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / count
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


def _make_padding_exact(backbone: nn.Module) -> _MaskedInstanceNorm | None:
    """Swap a wav2vec2-style first-layer GroupNorm for :class:`_MaskedInstanceNorm` (same parameters)."""
    extractor = getattr(backbone, "feature_extractor", None)
    layers = getattr(extractor, "conv_layers", None)
    if not layers:
        return None
    first = layers[0]
    norm = getattr(first, "layer_norm", None)
    if type(norm) is not nn.GroupNorm or norm.num_groups != norm.num_channels:
        return None
    norm.__class__ = _MaskedInstanceNorm
    return norm


class Backbone(nn.Module):
    """A pretrained encoder with learnable softmax weights over all its hidden layers."""

    def __init__(self, encoder: nn.Module, freeze: str):
        super().__init__()
        self.encoder = encoder
        self.freeze = freeze
        if getattr(encoder.config, "layerdrop", 0.0):
            # LayerDrop skips whole layers in training, which would change the number of hidden
            # states that the layer weights combine.
            encoder.config.layerdrop = 0.0
        self.num_layers = int(encoder.config.num_hidden_layers) + 1
        self.hidden_size = int(encoder.config.hidden_size)
        self.layer_weights = nn.Parameter(torch.zeros(self.num_layers))
        self._first_norm = _make_padding_exact(encoder)
        conv = getattr(getattr(encoder, "feature_extractor", None), "conv_layers", None)
        self._first_conv = conv[0].conv if conv else None
        self.apply_freeze(freeze)

    def apply_freeze(self, freeze: str) -> None:
        for p in self.encoder.parameters():
            p.requires_grad = freeze == "none"
        if freeze == "feature_encoder":
            extractor = getattr(self.encoder, "feature_extractor", None)
            if extractor is None:
                raise ConfigError("--freeze feature_encoder needs an encoder with a convolutional "
                                  "feature encoder (wav2vec2, HuBERT, WavLM, ...)")
            for name, p in self.encoder.named_parameters():
                p.requires_grad = not name.startswith("feature_extractor.")
            if hasattr(extractor, "_requires_grad"):
                extractor._requires_grad = False

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.freeze == "backbone":
            self.encoder.eval()  # a frozen encoder runs deterministically (no dropout, no masking)
        return self

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder._get_feat_extract_output_lengths(lengths).long()

    def layers(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All hidden states ``(batch, layers, frames, hidden)`` and the frame lengths."""
        samples = torch.arange(wave.shape[1], device=wave.device)[None, :]
        mask = samples < lengths[:, None]
        count = lengths[:, None].clamp(min=1)
        mean = (wave * mask).sum(1, keepdim=True) / count
        std = torch.sqrt((((wave - mean) * mask) ** 2).sum(1, keepdim=True) / count + 1e-7)
        normed = ((wave - mean) / std) * mask  # zero-mean, unit-variance input, as the encoders expect
        if self._first_norm is not None:
            conv = self._first_conv
            self._first_norm.valid_frames = (lengths - conv.kernel_size[0]) // conv.stride[0] + 1
        try:
            grad = torch.is_grad_enabled() and self.freeze != "backbone"
            with torch.set_grad_enabled(grad):
                out = self.encoder(normed, attention_mask=mask.long(), output_hidden_states=True)
        finally:
            if self._first_norm is not None:
                self._first_norm.valid_frames = None
        states = torch.stack(out.hidden_states, dim=1)
        return states, self.frame_lengths(lengths)

    def combine(self, states: torch.Tensor) -> torch.Tensor:
        """Softmax-weighted sum over the layer axis: ``(batch, frames, hidden)``."""
        weights = torch.softmax(self.layer_weights, dim=0).to(states.dtype)
        return torch.einsum("l,bltd->btd", weights, states)


# ----------------------------------------------------------------------------------------------
# Spectrogram branch, fusion, context, pooling
# ----------------------------------------------------------------------------------------------
def lengths_to_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


class SpectrogramBranch(nn.Module):
    """Log-mel (uncentred STFT) -> normalisation -> CNN -> per-frame projection.

    Time is downsampled only by strided convolutions (which see zeros beyond a clip's end, like its
    zeroed padding), frequency by max-pooling, so padding never leaks into a clip's frames.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        import torchaudio

        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
            n_mels=config.n_mels, f_min=20.0, f_max=config.sample_rate / 2, center=False, power=2.0,
        )
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))
        blocks, channels = [], 1
        for out, stride in zip(config.cnn_channels, config.cnn_time_strides):
            blocks.append(nn.ModuleDict({
                "conv": nn.Conv2d(channels, out, 3, stride=(1, stride), padding=1, bias=False),
                "norm": nn.BatchNorm2d(out),
                "pool": nn.MaxPool2d((2, 1)),
            }))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        bands = config.n_mels // 2 ** len(config.cnn_channels)
        if bands < 1:
            raise ConfigError(f"{len(config.cnn_channels)} CNN blocks halve {config.n_mels} mel bands to nothing")
        self.proj = nn.Linear(channels * bands, config.d_model)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Mel frames of each clip (uncentred STFT)."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        return torch.clamp((lengths - n_fft) // hop + 1, min=0)

    def log_mel(self, wave: torch.Tensor, lengths: torch.Tensor, mel_mean: torch.Tensor | None = None,
                mel_std: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised log-mel ``(batch, n_mels, frames)`` with padded frames set to 0, and lengths.

        ``mel_mean``/``mel_std`` ``(batch, n_mels)`` normalise each clip with its own (speaker's)
        statistics instead of the training data's.
        """
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.log(self.mel(wave.float()) + 1e-6)
        mean = self.mel_mean[None, :] if mel_mean is None else mel_mean.float()
        std = self.mel_std[None, :] if mel_std is None else mel_std.float()
        spec = (spec - mean[:, :, None]) / std[:, :, None]
        frame_lengths = self.frame_lengths(lengths)
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
    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__()
        position = torch.arange(max_len)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.table.shape[0]:
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
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, d = x.shape
        scores = self.score(x).float().masked_fill(~mask[:, :, None], float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (batch, frames, heads)
        values = self.value(x).view(batch, frames, self.heads, d // self.heads)
        pooled = torch.einsum("bth,bthe->bhe", weights.to(values.dtype), values).reshape(batch, d)
        return self.out(pooled), weights.transpose(1, 2)


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
class SERModel(nn.Module):
    """Speech emotion recogniser with an optional pretrained encoder and a log-mel CNN branch."""

    def __init__(self, config: ModelConfig, encoder: nn.Module | None = None):
        super().__init__()
        config.validate()
        self.config = config
        d = config.d_model
        self.backbone: Backbone | None = None
        if config.has_backbone:
            if encoder is None:
                encoder = load_backbone(config.backbone, config.backbone_config)
            config.backbone_config = _plain(encoder.config.to_dict())
            self.backbone = Backbone(encoder, config.freeze)
            self.backbone_proj = nn.Sequential(nn.Linear(self.backbone.hidden_size, d), nn.LayerNorm(d))
        self.spectrogram = SpectrogramBranch(config) if config.spectrogram else None
        branches = int(self.backbone is not None) + int(self.spectrogram is not None)
        self.fusion = nn.Sequential(nn.Linear(branches * d, d), nn.LayerNorm(d), nn.Dropout(config.dropout))
        self.positions = SinusoidalPositions(d)
        layer = nn.TransformerEncoderLayer(d, config.context_heads, 4 * d, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.context = nn.TransformerEncoder(layer, config.context_layers, enable_nested_tensor=False)
        self.context_norm = nn.LayerNorm(d)
        self.pooling = AttentionPooling(d, config.pooling_heads, config.dropout)
        self.descriptor_net = None
        if config.descriptor_dim:
            self.descriptor_net = nn.Sequential(nn.Linear(config.descriptor_dim, d), nn.GELU(),
                                                nn.Dropout(config.dropout), nn.Linear(d, d))
            self.descriptor_merge = nn.Sequential(nn.Linear(2 * d, d), nn.GELU())
        self.emotion_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout),
                                          nn.Linear(d, config.num_emotions))
        self.gender_head = nn.Linear(d, 2) if config.gender_head else None

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                spec_augment: Callable | None = None,
                backbone_states: torch.Tensor | None = None,
                backbone_lengths: torch.Tensor | None = None,
                mel_mean: torch.Tensor | None = None, mel_std: torch.Tensor | None = None,
                descriptors: torch.Tensor | None = None) -> SEROutput:
        """``wave`` (batch, samples) at ``config.sample_rate``; ``lengths`` real samples per clip.

        ``backbone_states``/``backbone_lengths`` (from :meth:`Backbone.layers`, e.g. a disk cache)
        replace running a frozen encoder; ``mel_mean``/``mel_std`` normalise each clip's log-mel with
        its speaker's statistics; ``descriptors`` ``(batch, descriptor_dim)`` are the normalised clip
        descriptors of a model built with ``descriptor_dim``.
        """
        if wave.dim() == 1:
            wave = wave[None]
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[1], device=wave.device, dtype=torch.long)
        branches, frame_lengths = [], []
        if self.backbone is not None:
            if backbone_states is None:
                backbone_states, backbone_lengths = self.backbone.layers(wave, lengths)
            seq = self.backbone_proj(self.backbone.combine(backbone_states))
            if self.spectrogram is not None and self.config.frame_stride > 2:
                # the encoder runs at 50 frames/s (log-mel / 2): average to the CNN's frame rate
                seq, backbone_lengths = masked_avg_pool(seq, backbone_lengths, self.config.frame_stride // 2)
            branches.append(seq)
            frame_lengths.append(backbone_lengths)
        if self.spectrogram is not None:
            seq, frames = self.spectrogram(wave, lengths, spec_augment, mel_mean, mel_std)
            branches.append(seq)
            frame_lengths.append(frames)
        steps = min(b.shape[1] for b in branches)
        fused = self.fusion(torch.cat([b[:, :steps] for b in branches], dim=-1))
        valid = torch.stack(frame_lengths).min(0).values.clamp(min=1, max=steps)
        mask = lengths_to_mask(valid, steps)
        x = self.positions(fused) * mask[:, :, None].to(fused.dtype)
        x = self.context(x, src_key_padding_mask=~mask)
        x = self.context_norm(x)
        pooled, attention = self.pooling(x, mask)
        if self.descriptor_net is not None:
            if descriptors is None:
                raise ConfigError("this model also takes clip descriptors (descriptor_dim > 0); pass descriptors")
            described = self.descriptor_net(descriptors.to(pooled.dtype))
            pooled = self.descriptor_merge(torch.cat([pooled, described], dim=-1))
        gender = self.gender_head(pooled) if self.gender_head is not None else None
        return SEROutput(self.emotion_head(pooled), gender, attention, mask)

    @torch.no_grad()
    def describe_shapes(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> list[tuple[str, tuple]]:
        """The output shape of every stage for one forward pass (notebook 03 prints them)."""
        stages = []
        if self.spectrogram is not None:
            stages += [("log-mel", self.spectrogram.mel)]
            stages += [(f"CNN block {i + 1}", b["pool"]) for i, b in enumerate(self.spectrogram.blocks)]
            stages += [("spectrogram projection", self.spectrogram.proj)]
        if self.backbone is not None:
            stages += [("encoder last layer", self.backbone.encoder), ("encoder projection", self.backbone_proj)]
        stages += [("fusion", self.fusion), ("context transformer", self.context),
                   ("attention pooling", self.pooling), ("emotion head", self.emotion_head)]
        if self.gender_head is not None:
            stages.append(("gender head", self.gender_head))
        shapes: list[tuple[str, tuple]] = []

        def hook(name):
            def record(module, inputs, output):
                first = output[0] if isinstance(output, tuple) else getattr(output, "last_hidden_state", output)
                shapes.append((name, tuple(first.shape)))
            return record

        handles = [module.register_forward_hook(hook(name)) for name, module in stages]
        try:
            was_training = self.training
            self.eval()
            self(wave, lengths)
            self.train(was_training)
        finally:
            for handle in handles:
                handle.remove()
        return shapes

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band log-mel statistics of the training data (stored in the state dict)."""
        if self.spectrogram is not None:
            self.spectrogram.mel_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.spectrogram.mel_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-3))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters of the pretrained encoder versus the new layers."""
        encoder = [p for p in self.backbone.encoder.parameters() if p.requires_grad] if self.backbone else []
        encoder_ids = {id(p) for p in encoder}
        new = [p for p in self.parameters() if p.requires_grad and id(p) not in encoder_ids]
        return {"backbone": encoder, "heads": new}

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """Total and trainable parameters per part (for notebook 03 and the run manifest)."""
        parts = {
            "backbone": [self.backbone] if self.backbone else [],
            "spectrogram": [self.spectrogram] if self.spectrogram else [],
            "fusion+context": [m for m in (getattr(self, "backbone_proj", None), self.fusion, self.context,
                                           self.context_norm) if m is not None],
            "pooling+heads": [m for m in (self.pooling, self.emotion_head, self.gender_head, self.descriptor_net,
                                          getattr(self, "descriptor_merge", None)) if m is not None],
        }
        counts = {}
        for name, modules in parts.items():
            params = [p for m in modules for p in m.parameters()]
            counts[name] = {"total": sum(p.numel() for p in params),
                            "trainable": sum(p.numel() for p in params if p.requires_grad)}
        counts["all"] = {k: sum(c[k] for c in counts.values()) for k in ("total", "trainable")}
        return counts


def _plain(data: dict) -> dict:
    """A JSON round trip, so a config holds only plain values (for ``weights_only`` loading)."""
    return json.loads(json.dumps(data, default=str))
