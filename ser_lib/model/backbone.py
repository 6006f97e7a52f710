"""Pretrained audio encoders (wav2vec 2.0, HuBERT, WavLM, ...) as the model's first branch.

:func:`load_backbone` loads any Hugging Face audio encoder by hub name or local folder, and says what
to do when it cannot be fetched (offline, wrong name). :class:`Backbone` wraps it with learnable
softmax weights over all its hidden layers and the freeze options, and makes its first normalisation
exact under padding. :class:`EncoderStatesCache` keeps a frozen encoder's layers on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.audio import AudioSettings
from ..data.cache import FeatureCache
from ..errors import BackboneError, ConfigError

FREEZE_CHOICES = ("none", "feature_encoder", "backbone")


def is_backbone_name(name: str | None) -> bool:
    """Whether ``name`` asks for a pretrained encoder (``None``, ``""`` and ``"none"`` do not)."""
    return name not in (None, "", "none")


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



class EncoderStatesCache:
    """Hidden states of a frozen encoder per clip, on disk as float16 (a :class:`FeatureCache`).

    With ``--freeze backbone`` the encoder's output for a clip never changes, so it is computed once
    (:meth:`fill`) and later epochs train only the layers on top. Keyed by file content, the
    encoder's weights and the audio settings.
    """

    def __init__(self, folder, backbone: Backbone, settings: AudioSettings):
        self.store = FeatureCache(folder)
        self.backbone = backbone
        self.settings = settings
        digest = hashlib.sha1(json.dumps(backbone.encoder.config.to_dict(), sort_keys=True, default=str).encode())
        for tensor in backbone.encoder.state_dict().values():
            digest.update(tensor.detach().cpu().float().numpy().tobytes()[:4096])
            digest.update(str(float(tensor.float().sum())).encode())
        self.params = {"encoder": digest.hexdigest(), **settings.cache_params()}

    @torch.no_grad()
    def _compute(self, wave: np.ndarray, device) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wave))[None].to(device)
        states, frames = self.backbone.layers(x, torch.tensor([len(wave)], device=device))
        return states[0, :, : int(frames[0])].to(torch.float16).cpu().numpy()

    def get(self, path: str, wave: np.ndarray, device="cpu") -> np.ndarray:
        """The states of ``wave`` (the centre crop of the clip at ``path``), computed once."""
        return self.store.get(path, "encoder-states", self.params, lambda: self._compute(wave, device))

    def fill(self, paths: Sequence[str], waves: Sequence[np.ndarray], device, progress: bool = True) -> None:
        """Compute and store the states of every clip's centre crop (skips those already there)."""
        was_training = self.backbone.training
        self.backbone.eval()
        for path, wave in tqdm(list(zip(paths, waves)), desc="caching encoder layers", unit="clip",
                               disable=not progress, leave=False):
            self.get(path, self.settings.center_crop(wave), device)
        self.backbone.train(was_training)
