"""Voice-encoder statistics: what a speaker encoder pretrained on thousands of voices hears in a clip.

The encoder is the GE2E speaker-verification network (Wan et al., 2018, ICASSP) as trained by
Resemblyzer (three LSTM layers of 256 units over 40-band mel power spectra, 25 ms windows every 10 ms,
trained on LibriSpeech, VoxCeleb 1 and 2: thousands of speakers, many rooms and microphones). Its
weights ship inside the ``resemblyzer`` wheel on PyPI: installed (``pip install --no-deps resemblyzer``), its
file is used; otherwise the first use downloads that wheel (15.7 MB, MD5-checked) and keeps only the weights, in
the cache folder; ``SER_VOICE_ENCODER=/path/to/pretrained.pt`` names a copy (a machine offline).

It was trained to tell speakers apart, not emotions: its final embedding averages the voice over the
clip. Its hidden layers still follow how the voice moves, frame by frame; the mean and standard
deviation of each layer's 256 units over the clip (1536 values) are the descriptors this module gives.
As in the encoder's training, a clip quieter than -30 dBFS is first raised to it, and a louder one keeps
its level: a quiet room or a distant microphone does not change what the encoder hears, a raised voice
does (from RAVDESS to CREMA-D, setting every clip to -30 dBFS, louder ones lowered too, lost 0.08-0.10 UAR at
a cold start in ``benchmarks/transfer_baselines.py``).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from .. import paths
from ..errors import ConfigError, DownloadError
from .download import Resource, fetch_member

SAMPLE_RATE = 16_000
N_MELS, WINDOW, HOP = 40, 400, 160  # 25 ms windows every 10 ms at 16 kHz, as the encoder was trained
HIDDEN, LAYERS = 256, 3
TARGET_DBFS = -30.0
#: Environment variable naming the weights file (``pretrained.pt``); when set, it is used even if
#: ``resemblyzer`` is installed.
ENV = "SER_VOICE_ENCODER"
#: The wheel that ships the weights, and where on PyPI it is (downloaded when it is not installed).
PACKAGE = "resemblyzer==0.1.4"
WHEEL = Resource(
    url="https://files.pythonhosted.org/packages/d9/b5/d897d5de5b2123a1ad5d32e8e007d83f76582f5c32c60992577263bd7c7e/"
        "Resemblyzer-0.1.4-py3-none-any.whl",
    filename="Resemblyzer-0.1.4-py3-none-any.whl", md5="48ba5ecfea339f34b46ecdc461f8f063", size=15_747_704,
    licence="Apache-2.0 (Resemblyzer, Resemble AI)")
MEMBER = "resemblyzer/pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
#: Bumped when the way the statistics are computed changes (cached values and checkpoints record it).
METHOD = 1

log = logging.getLogger(__name__)


def downloaded_path() -> Path:
    """Where a downloaded copy of the weights is kept: ``CACHE/voice-encoder/pretrained.pt``."""
    return paths.cache_dir() / "voice-encoder" / "pretrained.pt"


def weights_path(download: bool = True) -> Path:
    """The encoder's weights: ``$SER_VOICE_ENCODER``, else the file inside the installed ``resemblyzer``, else
    the downloaded copy; with ``download``, the first call without any of them fetches :data:`WHEEL`."""
    if os.environ.get(ENV):
        path = Path(os.environ[ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV}={path} is not a file: point it at the voice encoder's pretrained.pt")
        return path
    spec = importlib.util.find_spec("resemblyzer")  # located, not imported (its import needs webrtcvad)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "pretrained.pt").is_file():
            return Path(folder) / "pretrained.pt"
    if downloaded_path().is_file():
        return downloaded_path()
    if not download:
        raise ConfigError("the voice encoder's weights are not here; the first use downloads them, or: "
                          + _ways_out())
    return _download()


def _ways_out() -> str:
    return (f"pip install --no-deps {PACKAGE}; or set {ENV} to a copy of its pretrained.pt; or put {WHEEL.filename} "
            f"({WHEEL.url}) into {downloaded_path().parent / '.download'} and run again")


def _download() -> Path:
    log.warning("fetching the pretrained voice encoder's weights (%s%s) into %s", WHEEL.filename,
                f", {WHEEL.size / 1e6:.1f} MB" if WHEEL.size else "", downloaded_path().parent)
    try:
        return fetch_member(WHEEL, MEMBER, downloaded_path(), sha256=WEIGHTS_SHA256, retries=2, timeout=30.0)
    except DownloadError as error:
        gist = str(error).split("; ")[0].split(". ")[0]  # what went wrong, without the archive's own advice
        raise ConfigError(f"the voice encoder's weights could not be downloaded: {gist}. Ways out: run again (a "
                          f"broken transfer resumes); {_ways_out()}") from None
    except OSError as error:  # a cache folder that cannot be written
        raise ConfigError(f"the voice encoder's weights could not be kept in {downloaded_path().parent}: {error}. "
                          f"Ways out: set SER_CACHE_DIR to a folder you can write; {_ways_out()}") from None


def check() -> Path:
    """The weights' path, once they are found (or downloaded) and load as the encoder; else :class:`ConfigError`."""
    path = weights_path()
    _encoder(_file_key(path))
    return path


def available() -> bool:
    """Whether the encoder's weights are here (nothing is downloaded)."""
    try:
        weights_path(download=False)
    except ConfigError:
        return False
    return True


def _file_key(path: Path) -> tuple[str, int, int]:
    """A file's path, modification time and size: a file replaced in place is read again."""
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4)
def _fingerprint(key: tuple[str, int, int]) -> str:
    return hashlib.sha256(Path(key[0]).read_bytes()).hexdigest()[:16]


def version() -> str:
    """Names the weights (a hash of the file), the level rule and the method: cached descriptors and
    checkpoints record it."""
    return f"ge2e-lstm-{_fingerprint(_file_key(weights_path()))}/raised-to{TARGET_DBFS:g}dBFS/method-{METHOD}"


@functools.lru_cache(maxsize=2)
def _encoder(key: tuple[str, int, int]):
    import multiprocessing

    import torch
    from torch import nn

    if multiprocessing.parent_process() is not None:  # a worker of a pool: one thread, as its siblings
        torch.set_num_threads(1)
    path = key[0]
    layers = nn.ModuleList(nn.LSTM(N_MELS if i == 0 else HIDDEN, HIDDEN, 1, batch_first=True) for i in range(LAYERS))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model_state", state)
        for i, layer in enumerate(layers):  # one module per layer, so each layer's states can be read
            layer.load_state_dict({f"{name}_l0": state[f"lstm.{name}_l{i}"]
                                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    except Exception as error:  # not a weights file, another network, a damaged copy
        fix = "delete it: the next use downloads it again" if Path(path) == downloaded_path() else \
            f"pip install --no-deps {PACKAGE} ships them"
        raise ConfigError(f"{path} does not hold the voice encoder's weights (3 LSTM layers of {HIDDEN}; "
                          f"{fix}): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                          ) from None
    return layers.eval()


def mel_power(wave: np.ndarray) -> np.ndarray:
    """The encoder's input: 40-band mel power spectra ``(frames, 40)`` of a 16 kHz clip, raised to -30 dBFS
    if it is quieter."""
    import librosa

    from .audio import rms_db

    wave = np.asarray(wave, dtype=np.float32)
    if np.any(wave) and (level := rms_db(wave)) < TARGET_DBFS:
        wave = wave * np.float32(10 ** ((TARGET_DBFS - level) / 20))
    if len(wave) < WINDOW:
        wave = np.pad(wave, (0, WINDOW - len(wave)))
    return librosa.feature.melspectrogram(y=wave, sr=SAMPLE_RATE, n_fft=WINDOW, hop_length=HOP,
                                          n_mels=N_MELS).T.astype(np.float32)


@functools.lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """``voice_l{layer}_{mean|std}_{unit}``: 3 layers x 2 statistics x 256 units."""
    return tuple(f"voice_l{layer}_{stat}_{unit}" for layer in range(1, LAYERS + 1) for stat in ("mean", "std")
                 for unit in range(HIDDEN))


def statistics(wave: np.ndarray, sr: int) -> np.ndarray:
    """Mean and standard deviation over the frames of each encoder layer's units (float32, ``len(names())``)."""
    import torch

    if sr != SAMPLE_RATE:
        from .audio import resample

        wave = resample(np.asarray(wave, dtype=np.float32), sr, SAMPLE_RATE)
    layers = _encoder(_file_key(weights_path()))
    x = torch.from_numpy(mel_power(wave))[None]
    values = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one clip's LSTM steps are too small to share: 2 threads took 4x as long as 1
    try:
        with torch.inference_mode():
            for layer in layers:
                x, _ = layer(x)
                values += [x[0].mean(0), x[0].std(0, correction=0)]
    finally:
        torch.set_num_threads(threads)
    return np.nan_to_num(torch.cat(values).numpy(), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
