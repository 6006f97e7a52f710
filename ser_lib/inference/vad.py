"""Voice-activity gates for the live stream: Silero VAD, or an energy threshold as the light fallback.

Every hop the stream hands the gate its newest audio; the gate says whether someone is speaking, so
the model only classifies speech. Both gates have hysteresis (open above one score, close below a
lower one, the energy gate after a hang-over of quiet hops), so they do not flicker.

* :class:`SileroGate` - Silero VAD (``pip install silero-vad``; the wheel ships the model, no download),
  a small neural detector trained on speech in many kinds of noise: a fan, music or a hum is not speech
  to it. It scores every 32 ms (512 samples at 16 kHz); a hop's score is its highest chunk score.
  It runs on onnxruntime when installed (about 3 ms per 0.5 s hop on 2 CPU cores), else TorchScript.
* :class:`EnergyGate` - the level of the hop in dB above a noise floor that follows the quietest
  recent hops: no dependency and next to no compute, but any sound louder than the floor opens it.

:func:`make_gate` builds one by name; ``"auto"`` (the default) is Silero when it is installed.
"""
from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import audio
from ..errors import ConfigError

log = logging.getLogger(__name__)

VADS = ("auto", "silero", "energy")
SILERO_RATE = 16000
SILERO_CHUNK = 512  # samples per Silero VAD step at 16 kHz (32 ms)


def _hysteresis(gate, opens: bool, quiet: bool) -> bool:
    """One hop of a gate with hysteresis: a closed gate opens when ``opens``; an open one closes
    after more than ``gate.hangover`` hops in a row that are ``quiet``."""
    if not gate.open:
        if opens:
            gate.open, gate._quiet_hops = True, 0
    elif quiet:
        gate._quiet_hops += 1
        if gate._quiet_hops > gate.hangover:
            gate.open = False
    else:
        gate._quiet_hops = 0
    return gate.open


@dataclass
class EnergyGate:
    """Energy gate with hysteresis: opens above ``on_db``, closes below ``off_db`` after a hang-over.

    Levels are in dB above a noise floor that follows the quietest recent hops (it starts at the
    first hop's level, falls at once and rises slowly), with ``min_speech_db`` as an absolute floor
    for digital silence. A stream that starts in noise therefore does not open on the noise; one
    that starts while someone speaks opens after the first pause (the floor falls to it).
    """

    on_db: float = 12.0
    off_db: float = 6.0
    hangover: int = 2            # hops below ``off_db`` before the gate closes
    min_speech_db: float = -55.0
    floor_rise_db: float = 0.5   # per hop
    floor_db: float | None = None  # None until the first hop
    open: bool = False
    _quiet_hops: int = 0

    name = "energy"

    def update(self, hop: np.ndarray, sample_rate: int) -> bool:
        """Hear the newest hop (mono, at ``sample_rate``); return whether the gate is open."""
        return self.step(audio.rms_db(hop))

    def step(self, level_db: float) -> bool:
        """One hop of the gate, given the hop's level in dBFS."""
        self.floor_db = level_db if self.floor_db is None else min(level_db, self.floor_db + self.floor_rise_db)
        above = level_db - self.floor_db
        loud_enough = level_db > self.min_speech_db
        return _hysteresis(self, opens=loud_enough and above >= self.on_db,
                           quiet=not loud_enough or above < self.off_db)

    def reset(self) -> None:
        self.open, self._quiet_hops, self.floor_db = False, 0, None


def silero_available() -> bool:
    """Whether the ``silero-vad`` package can be imported."""
    try:
        _silero_module()
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _silero_module():
    # importing silero_vad sets torch's thread count to 1 for the whole process: keep the caller's
    threads = torch.get_num_threads()
    try:
        import silero_vad
    finally:
        torch.set_num_threads(threads)
    return silero_vad


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class SileroGate:
    """Silero VAD with hysteresis over hops: opens when a 32 ms chunk scores ``threshold`` or more,
    closes after ``hangover`` hops whose best chunk scores below ``off_threshold``. No hang-over by
    default: a hop's best chunk already bridges pauses shorter than a hop (in ``benchmarks/vad.py`` a
    hang-over of two hops raised recall by at most 0.03 and opened on about 40% more hops).

    Audio at any rate is resampled to 16 kHz by one streaming resampler, and samples that do not
    fill a 512-sample chunk wait for the next hop, so the detector sees one continuous signal
    whatever the hop length (a hop that completes no chunk leaves the gate as it was).
    """

    threshold: float = 0.5
    off_threshold: float = 0.35
    hangover: int = 0
    open: bool = False
    score: float = 0.0           # the newest hop's score (highest chunk probability)
    _quiet_hops: int = 0
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)
    _resampler: object = field(default=None, repr=False)
    _input_rate: int = field(default=SILERO_RATE, repr=False)

    name = "silero"

    def __post_init__(self):
        if not 0 < self.off_threshold <= self.threshold < 1:
            raise ConfigError("need 0 < off_threshold <= threshold < 1 for the Silero gate")
        try:
            module = _silero_module()
        except ImportError:
            raise ConfigError("the Silero voice-activity detector is not installed: pip install silero-vad "
                              "(or use the energy gate: --vad energy)") from None
        # the ONNX copy of the model on onnxruntime: the same probabilities, twice as fast as TorchScript
        with warnings.catch_warnings():  # silero_vad's own use of a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = module.load_silero_vad(onnx=_onnxruntime_available())

    def speech_probs(self, hop: np.ndarray, sample_rate: int) -> np.ndarray:
        """Speech probability of every whole 32 ms chunk completed by this hop (carrying the rest)."""
        hop = np.ascontiguousarray(hop, dtype=np.float32)
        if sample_rate != self._input_rate or (self._resampler is None and sample_rate != SILERO_RATE):
            import soxr

            self._input_rate = int(sample_rate)
            self._resampler = None if sample_rate == SILERO_RATE else \
                soxr.ResampleStream(sample_rate, SILERO_RATE, 1, dtype="float32", quality="HQ")
        if self._resampler is not None:
            hop = self._resampler.resample_chunk(hop)
        samples = np.concatenate([self._pending, hop])
        n = len(samples) // SILERO_CHUNK * SILERO_CHUNK
        self._pending = samples[n:]
        chunks = torch.from_numpy(np.ascontiguousarray(samples[:n])).view(-1, SILERO_CHUNK)
        with torch.inference_mode():
            return np.array([float(self.model(chunk, SILERO_RATE)) for chunk in chunks], dtype=np.float32)

    def update(self, hop: np.ndarray, sample_rate: int) -> bool:
        """Hear the newest hop (mono, at ``sample_rate``); return whether the gate is open."""
        probs = self.speech_probs(hop, sample_rate)
        if not len(probs):
            return self.open
        self.score = float(probs.max())
        return _hysteresis(self, opens=self.score >= self.threshold, quiet=self.score < self.off_threshold)

    def reset(self) -> None:
        self.model.reset_states()
        self.open, self._quiet_hops, self.score = False, 0, 0.0
        self._pending = np.zeros(0, dtype=np.float32)
        self._resampler, self._input_rate = None, SILERO_RATE


def make_gate(vad: str = "auto") -> EnergyGate | SileroGate:
    """A new gate by name: ``"silero"``, ``"energy"``, or ``"auto"`` (Silero when installed)."""
    if vad not in VADS:
        raise ConfigError(f"unknown voice-activity detector {vad!r}; use one of {', '.join(VADS)}")
    if vad == "auto":
        if silero_available():
            return SileroGate()
        log.info("silero-vad is not installed: the live stream gates on energy")
        return EnergyGate()
    return SileroGate() if vad == "silero" else EnergyGate()
