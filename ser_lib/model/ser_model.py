"""The dual-branch SER model (notebook 03 builds it up piece by piece).

::

    waveform ─┬─ pretrained encoder (wav2vec 2.0 / HuBERT / WavLM): softmax-weighted sum of all
              │  hidden layers -> linear, 50 frames/s, averaged in pairs ──────────────────┐
              └─ log-mel (64 bands, 100 frames/s) -> CNN (time strides 2, 2, 1) -> linear ─┤ 25 frames/s
                   -> fusion (concatenate, linear) -> context transformer <────────────────┘
                   -> multi-head attention pooling (ignores padding) [+ clip descriptors]
                   -> emotion head, gender head

``backbone="none"`` gives the spectrogram-only model, the one that trains without an audio backbone (no
wav2vec-style download). Every stage honours the padding mask, so a clip's prediction does not depend on what else
is in its batch: the STFT frames are uncentred, padded frames are zeroed between CNN blocks, and the
first group-normalised convolution of wav2vec2-style encoders is normalised over real samples only.
The log-mel statistics and the clip descriptors come in as inputs from the input normaliser
(:mod:`ser_lib.model.normalizer`), which decides between the training data's and the speaker's.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, NamedTuple

import torch
from torch import nn

from ..data.features import MelSettings
from ..errors import ConfigError
from .backbone import FREEZE_CHOICES, Backbone, is_backbone_name, load_backbone
from .layers import (
    POOLINGS,
    AttentionPooling,
    Dropout,
    MeanPooling,
    SinusoidalPositions,
    SpectrogramBranch,
    lengths_to_mask,
    masked_avg_pool,
    with_fast_dropout,
)


@dataclass
class ModelConfig:
    """Everything needed to rebuild the model; saved with every checkpoint (plain values only).

    The first fields have no defaults on purpose: the user-facing defaults live in
    :class:`~ser_lib.training.config.TrainConfig`, whose :meth:`model_config` builds this.
    """

    num_emotions: int
    backbone: str | None                    # hub name or local folder; None or "none": no encoder
    freeze: str                             # none | feature_encoder | backbone
    spectrogram: bool                       # the log-mel CNN branch
    d_model: int
    cnn_channels: tuple[int, ...]
    context_layers: int
    dropout: float
    gender_head: bool
    descriptor_dim: int                     # clip descriptors fed beside the pooled vector (0: none)
    mel: MelSettings = field(default_factory=MelSettings)
    cnn_time_strides: tuple[int, ...] = (2, 2, 1)  # log-mel at 100 frames/s -> 25 frames/s
    context_heads: int = 4
    pooling_heads: int = 4
    pooling: str = "attention"              # attention | mean (over real frames)
    backbone_config: dict | None = field(default=None, repr=False)

    @property
    def has_backbone(self) -> bool:
        return is_backbone_name(self.backbone)

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
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.context_layers < 0:
            raise ConfigError(f"context_layers must be 0 or more, got {self.context_layers}")

    @property
    def frame_stride(self) -> int:
        """Log-mel frames per output frame of the spectrogram branch."""
        return int(math.prod(self.cnn_time_strides))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples become lists: plain values only

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for key in ("cnn_channels", "cnn_time_strides"):
            if key in values:
                values[key] = tuple(values[key])
        if isinstance(values.get("mel"), dict):
            values["mel"] = MelSettings(**values["mel"])
        return cls(**values)


class SEROutput(NamedTuple):
    emotion_logits: torch.Tensor           # (batch, emotions)
    gender_logits: torch.Tensor | None     # (batch, 2): male, female
    attention: torch.Tensor                # (batch, pooling heads, frames): pooling weights (mean: uniform)
    frame_mask: torch.Tensor               # (batch, frames): True on real frames


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
        self.fusion = nn.Sequential(nn.Linear(branches * d, d), nn.LayerNorm(d), Dropout(config.dropout))
        self.positions = SinusoidalPositions(d)
        layer = with_fast_dropout(nn.TransformerEncoderLayer(d, config.context_heads, 4 * d, config.dropout,
                                                             activation="gelu", batch_first=True, norm_first=True))
        self.context = nn.TransformerEncoder(layer, config.context_layers, enable_nested_tensor=False) \
            if config.context_layers else None  # none: each frame is classified without its neighbours' context
        self.context_norm = nn.LayerNorm(d)
        self.pooling = AttentionPooling(d, config.pooling_heads, config.dropout) if config.pooling == "attention" \
            else MeanPooling(config.pooling_heads)
        self.descriptor_net = None
        if config.descriptor_dim:
            self.descriptor_net = nn.Sequential(nn.Linear(config.descriptor_dim, d), nn.GELU(),
                                                Dropout(config.dropout), nn.Linear(d, d))
            self.descriptor_merge = nn.Sequential(nn.Linear(2 * d, d), nn.GELU())
        self.emotion_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), Dropout(config.dropout),
                                          nn.Linear(d, config.num_emotions))
        self.gender_head = nn.Linear(d, 2) if config.gender_head else None

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                spec_augment: Callable | None = None,
                backbone_states: torch.Tensor | None = None,
                backbone_lengths: torch.Tensor | None = None,
                mel_mean: torch.Tensor | None = None, mel_std: torch.Tensor | None = None,
                descriptors: torch.Tensor | None = None,
                mix: tuple[torch.Tensor, float] | None = None) -> SEROutput:
        """``wave`` (batch, samples) at ``config.mel.sample_rate``; ``lengths`` real samples per clip.

        ``backbone_states``/``backbone_lengths`` (from :meth:`Backbone.layers`, e.g. a disk cache)
        replace running a frozen encoder; ``mel_mean``/``mel_std`` ``(batch, n_mels)`` normalise each
        clip's log-mel, ``descriptors`` ``(batch, descriptor_dim)`` are its normalised clip descriptors
        (both from :class:`~ser_lib.model.normalizer.InputNormalizer`). ``mix`` ``(order, weight)`` (training
        only) replaces each clip's vector by ``weight`` of it plus ``1 - weight`` of clip ``order[i]``'s (mixup).
        """
        return self.classify(*self.encode(wave, lengths, spec_augment, backbone_states, backbone_lengths,
                                          mel_mean, mel_std), descriptors, mix)

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None, spec_augment: Callable | None = None,
               backbone_states: torch.Tensor | None = None, backbone_lengths: torch.Tensor | None = None,
               mel_mean: torch.Tensor | None = None, mel_std: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first part of :meth:`forward`, all that does not need the clip descriptors: the pooled
        vector ``(batch, d_model)``, the attention weights and the mask of real frames."""
        if wave.dim() == 1:
            wave = wave[None]
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[1], device=wave.device, dtype=torch.long)
        fused, mask = self._fused_frames(wave, lengths, spec_augment, backbone_states, backbone_lengths,
                                         mel_mean, mel_std)
        if self.context is None:
            x = self.context_norm(fused * mask[:, :, None].to(fused.dtype))
        else:
            x = self.positions(fused) * mask[:, :, None].to(fused.dtype)
            x = self.context_norm(self.context(x, src_key_padding_mask=~mask))
        pooled, attention = self.pooling(x, mask)
        return pooled, attention, mask

    def classify(self, pooled: torch.Tensor, attention: torch.Tensor, mask: torch.Tensor,
                 descriptors: torch.Tensor | None = None, mix: tuple[torch.Tensor, float] | None = None) -> SEROutput:
        """The rest of :meth:`forward`: the clip descriptors merged into :meth:`encode`'s pooled vector, then
        the heads."""
        if self.descriptor_net is not None:
            if descriptors is None:
                raise ConfigError("this model also takes clip descriptors (descriptor_dim > 0); pass descriptors")
            described = self.descriptor_net(descriptors.to(pooled.dtype))
            pooled = self.descriptor_merge(torch.cat([pooled, described], dim=-1))
        if mix is not None:
            order, weight = mix
            pooled = weight * pooled + (1 - weight) * pooled[order]
        gender = self.gender_head(pooled) if self.gender_head is not None else None
        return SEROutput(self.emotion_head(pooled), gender, attention, mask)

    def _fused_frames(self, wave, lengths, spec_augment, backbone_states, backbone_lengths, mel_mean, mel_std
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both branches at 25 frames/s, fused: ``(batch, frames, d_model)`` and the mask of real frames."""
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
        steps = functools.reduce(torch.sym_min, [b.shape[1] for b in branches])  # sym_min: traceable
        if len(branches) > 1:
            branches = [b.narrow(1, 0, steps) for b in branches]
        fused = self.fusion(torch.cat(branches, dim=-1))
        valid = torch.stack(frame_lengths).min(0).values.clamp(min=1, max=steps)
        return fused, lengths_to_mask(valid, steps)

    @torch.no_grad()
    def describe_shapes(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> list[tuple[str, tuple]]:
        """The output shape of every stage for one forward pass (notebook 03 prints them)."""
        stages = []
        if self.spectrogram is not None:
            stages += [("log-mel", self.spectrogram.front_end)]
            stages += [(f"CNN block {i + 1}", b["pool"]) for i, b in enumerate(self.spectrogram.blocks)]
            stages += [("spectrogram projection", self.spectrogram.proj)]
        if self.backbone is not None:
            stages += [("encoder last layer", self.backbone.encoder), ("encoder projection", self.backbone_proj)]
        stages += [("fusion", self.fusion)] + ([("context transformer", self.context)] if self.context else [])
        stages += [(f"{self.config.pooling} pooling", self.pooling), ("emotion head", self.emotion_head)]
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
