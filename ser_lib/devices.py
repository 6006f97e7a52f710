"""Choosing the compute device, with a clear message when the asked one is absent."""
from __future__ import annotations

import torch

from .errors import ConfigError, DeviceError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else Apple MPS, else CPU; ``cpu``/``cuda[:N]``/``mps`` are checked."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU "
                              f"(torch.cuda.is_available() is False). Use --device cpu, or check the driver and "
                              f"that the CUDA build of PyTorch is installed.")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("--device mps was asked for, but this machine has no Apple GPU available")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {name!r}")
