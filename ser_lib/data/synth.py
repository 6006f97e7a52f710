"""The built-in synthetic corpus: RAVDESS layout and names, voices made by a source-filter model.

Why: RAVDESS cannot ship with the course, yet every notebook and test needs speech whose emotion
can be learnt. Each clip is rendered the way speech is produced:

* **source** - a glottal pulse train (Rosenberg pulses, differentiated for lip radiation) whose
  period follows an F0 contour, with cycle-to-cycle jitter and shimmer, aspiration noise
  (breathiness) and a tension parameter that sets the spectral tilt;
* **filter** - a cascade of formant resonators that move through the vowels of the two RAVDESS
  statements, plus band-limited noise for the fricatives and stop bursts;
* **prosody** - accents, declination, phrase-final movement and segment durations.

Emotions shift the prosody in the directions reported in the vocal-emotion literature (Banse &
Scherer 1996; Juslin & Laukka 2003; Scherer 2003): anger and happiness raise F0, its range,
loudness and high-frequency energy; sadness lowers them, slows down and turns breathy; fear raises
F0 with more jitter and tremor; surprise ends on a large rise; disgust is slow, low and creaky;
calm is a slightly softer, slower, darker neutral. Strong intensity enlarges the deviation.
Each actor has a voice (F0, vocal-tract length, rate, loudness, breathiness, microphone colour),
an expressiveness and personal habits for each emotion, so a speaker-independent model has real
speaker variation to overcome, and calm/neutral stay hard to tell apart.

Everything is deterministic from the seed: the same seed writes bit-identical files.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .. import paths
from ..workers import process_pool
from .corpora.ravdess import EMOTIONS, STATEMENTS, ClipName, gender_of

log = logging.getLogger(__name__)

SYNTH_VERSION = 3
MANIFEST = "synth.json"
DEFAULT_SR = 16_000


# ----------------------------------------------------------------------------------------------
# Emotion profiles
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prosody:
    """Deviation of one rendering from the actor's neutral voice.

    Additive fields are in their own units; ``f0_range``, ``rate`` and ``pause`` are log-ratios
    (0 = neutral), so that scaling a profile by an intensity scales all fields alike.
    """

    f0_st: float = 0.0       # mean F0 shift, semitones
    f0_range: float = 0.0    # log-ratio of pitch excursions (accents, final movement)
    rate: float = 0.0        # log-ratio of speaking rate
    loud_db: float = 0.0     # level, dB
    tilt: float = 0.0        # spectral tilt, about dB per octave (positive: brighter, tenser)
    jitter: float = 0.0      # extra F0 perturbation, fraction of F0
    shimmer: float = 0.0     # extra amplitude perturbation per cycle, fraction
    breath: float = 0.0      # extra aspiration noise, fraction of the voiced source
    final_st: float = 0.0    # phrase-final pitch movement, semitones (positive: rise)
    tremor_st: float = 0.0   # 5-6 Hz F0 tremor depth, semitones
    pause: float = 0.0       # log-ratio of the pause between the two phrases
    formant: float = 0.0     # relative shift of formant frequencies (smiling raises them)

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, f.name) for f in fields(self)], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> "Prosody":
        return cls(*(float(v) for v in values))


#: Emotion profiles at normal intensity (RAVDESS codes).
EMOTION_PROSODY: dict[int, Prosody] = {
    1: Prosody(),
    2: Prosody(f0_st=-0.6, f0_range=-0.12, rate=-0.05, loud_db=-1.8, tilt=-1.0, breath=0.015,
               final_st=-0.4, pause=0.1),
    3: Prosody(f0_st=3.0, f0_range=0.38, rate=0.09, loud_db=3.5, tilt=2.0, final_st=1.0,
               pause=-0.1, formant=0.04),
    4: Prosody(f0_st=-2.2, f0_range=-0.55, rate=-0.24, loud_db=-5.0, tilt=-4.0, jitter=0.006,
               shimmer=0.05, breath=0.08, final_st=-1.5, pause=0.45, formant=-0.03),
    5: Prosody(f0_st=3.5, f0_range=0.30, rate=0.11, loud_db=7.5, tilt=6.0, jitter=0.004,
               shimmer=0.03, breath=-0.03, final_st=-1.0, pause=-0.2, formant=0.03),
    6: Prosody(f0_st=5.5, f0_range=-0.05, rate=0.16, loud_db=1.5, tilt=1.0, jitter=0.012,
               shimmer=0.04, breath=0.05, final_st=0.5, tremor_st=0.6, pause=0.2),
    7: Prosody(f0_st=-1.5, f0_range=0.1, rate=-0.2, loud_db=0.5, tilt=0.5, jitter=0.010,
               shimmer=0.08, final_st=-2.0, pause=0.3),
    8: Prosody(f0_st=4.0, f0_range=0.47, loud_db=2.5, tilt=2.0, final_st=5.0),
}

#: How much a strong rendering exceeds a normal one.
STRONG_SCALE = 1.7

#: Typical size of each prosody field, used to scale actor habits and clip-to-clip variation.
_FIELD_SCALE = Prosody(f0_st=1.2, f0_range=0.15, rate=0.06, loud_db=1.5, tilt=1.5, jitter=0.003,
                       shimmer=0.02, breath=0.02, final_st=1.0, tremor_st=0.15, pause=0.15,
                       formant=0.015).as_array()


# ----------------------------------------------------------------------------------------------
# Voices
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Voice:
    """An actor's habitual voice."""

    actor: int
    f0_hz: float
    formant_scale: float
    rate: float
    loud_db: float
    breath: float
    tension: float
    jitter: float
    shimmer: float
    expressiveness: float
    mic_tilt: float
    mic_peak_hz: float
    mic_peak_db: float
    noise_db: float


def make_voice(actor: int, seed: int) -> tuple[Voice, dict[int, np.ndarray]]:
    """The voice of ``actor`` and its personal habits per emotion (deviations of the profile)."""
    rng = np.random.default_rng([seed, actor, 7919])
    male = gender_of(actor) == "male"
    voice = Voice(
        actor=actor,
        f0_hz=float(rng.normal(118, 14) if male else rng.normal(205, 20)),
        formant_scale=float(rng.normal(1.0, 0.04) if male else rng.normal(1.16, 0.04)),
        rate=float(np.exp(rng.normal(0, 0.08))),
        loud_db=float(rng.normal(0, 2.0)),
        breath=float(rng.uniform(0.02, 0.07) + (0.02 if not male else 0.0)),
        tension=float(rng.normal(0, 1.0)),
        jitter=float(rng.uniform(0.003, 0.008)),
        shimmer=float(rng.uniform(0.02, 0.05)),
        expressiveness=float(rng.uniform(0.6, 1.35)),
        mic_tilt=float(rng.normal(0, 1.0)),
        mic_peak_hz=float(rng.uniform(800, 4000)),
        mic_peak_db=float(rng.normal(0, 2.5)),
        noise_db=float(rng.uniform(-80, -68)),
    )
    habits = {code: rng.normal(0, 0.4, size=_FIELD_SCALE.shape) * _FIELD_SCALE for code in EMOTIONS}
    habits[1] = habits[1] * 0.5  # an actor's neutral is their baseline: small habits only
    return voice, habits


def clip_prosody(emotion: int, intensity: int, habit: np.ndarray, voice: Voice,
                 rng: np.random.Generator) -> Prosody:
    """The prosody of one rendering: profile x intensity x expressiveness + habit + clip noise."""
    scale = (STRONG_SCALE if intensity == 2 else 1.0) * voice.expressiveness
    values = EMOTION_PROSODY[emotion].as_array() * scale + habit
    values += rng.normal(0, 0.45, size=values.shape) * _FIELD_SCALE
    return Prosody.from_array(values)


# ----------------------------------------------------------------------------------------------
# Phonetics of the two statements
# ----------------------------------------------------------------------------------------------
# Vowel formants F1-F3 of an adult male voice (Hillenbrand et al. 1995, rounded).
_VOWELS = {
    "I": (400, 1990, 2550), "A": (730, 1090, 2440), "O": (570, 840, 2410), "@": (520, 1190, 2390),
    "R": (490, 1350, 1690), "aI0": (730, 1090, 2440), "aI1": (400, 1990, 2550), "N": (300, 1100, 2300),
}
# Phones: (kind, detail, duration ms at neutral rate). Kinds: vowel, nasal (voiced, weak),
# closure (silence), burst (stop release noise), fric (fricative noise), vfric (voiced fricative).
_WORDS = {
    "kids": [("closure", None, 45), ("burst", "velar", 25), ("vowel", "I", 95), ("closure", None, 35),
             ("burst", "alveolar", 15), ("vfric", "s", 80)],
    "dogs": [("closure", None, 40), ("burst", "alveolar", 18), ("vowel", "O", 120),
             ("closure", None, 40), ("burst", "velar", 15), ("vfric", "s", 80)],
    "are": [("vowel", "A", 90), ("vowel", "R", 60)],
    "talking": [("closure", None, 45), ("burst", "alveolar", 30), ("vowel", "O", 130),
                ("closure", None, 50), ("burst", "velar", 25), ("vowel", "I", 70), ("nasal", "N", 70)],
    "sitting": [("fric", "s", 110), ("vowel", "I", 110), ("closure", None, 40),
                ("burst", "alveolar", 15), ("vowel", "I", 70), ("nasal", "N", 70)],
    "by": [("closure", None, 40), ("burst", "labial", 12), ("vowel", "aI0", 90), ("vowel", "aI1", 80)],
    "the": [("vfric", "th", 45), ("vowel", "@", 55)],
    "door": [("closure", None, 45), ("burst", "alveolar", 18), ("vowel", "O", 150), ("vowel", "R", 120)],
}
# Words of each statement, with accent strength (0 none, 1 secondary, 2 primary) and the index of
# the word after which a phrase boundary may fall.
_STATEMENT_WORDS = {
    1: [("kids", 1), ("are", 0), ("talking", 2), ("by", 0), ("the", 0), ("door", 2)],
    2: [("dogs", 1), ("are", 0), ("sitting", 2), ("by", 0), ("the", 0), ("door", 2)],
}
_PHRASE_BREAK_AFTER = 2
_NOISE_BANDS = {  # band-pass edges in Hz for consonant noise (clipped to the Nyquist frequency)
    "s": (3800, 7800), "th": (1500, 7000), "velar": (1500, 3200), "alveolar": (3000, 7500),
    "labial": (200, 1500),
}


@dataclass
class _Segment:
    kind: str
    detail: str | None
    start: int
    end: int
    accent: int


def _plan_segments(statement: int, pros: Prosody, voice: Voice, sr: int,
                   rng: np.random.Generator, lead_s: float) -> list[_Segment]:
    """Lay the phones of a statement on the time axis."""
    rate = voice.rate * np.exp(pros.rate)
    t = lead_s
    segments = []
    words = _STATEMENT_WORDS[statement]
    for w, (word, accent) in enumerate(words):
        phones = _WORDS[word]
        final_word = w == len(words) - 1
        for p, (kind, detail, ms) in enumerate(phones):
            dur = ms / 1000.0 / rate
            if kind == "vowel":
                dur *= 1.0 + 0.25 * accent
                if final_word:
                    dur *= 1.35  # phrase-final lengthening
            dur *= float(np.exp(rng.normal(0, 0.12)))
            start, end = int(round(t * sr)), int(round((t + dur) * sr))
            segments.append(_Segment(kind, detail, start, end, accent))
            t += dur
        if w == _PHRASE_BREAK_AFTER:
            t += 0.06 * np.exp(pros.pause) * float(np.exp(rng.normal(0, 0.3)))
        else:
            t += 0.012
    return segments


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------
def _f0_contour(segments: list[_Segment], n: int, sr: int, voice: Voice, pros: Prosody,
                rng: np.random.Generator) -> np.ndarray:
    """Instantaneous F0 in Hz for every sample (defined everywhere; voicing is applied later)."""
    span = np.exp(pros.f0_range)
    first = segments[0].start
    last = segments[-1].end
    targets_t, targets_st = [first], [1.0 * span]
    for seg in segments:
        if seg.kind != "vowel":
            continue
        mid = (seg.start + seg.end) // 2
        progress = (mid - first) / max(1, last - first)
        accent = (2.2 * seg.accent + rng.normal(0, 0.5)) * span
        targets_t.append(mid)
        targets_st.append(accent - 2.5 * progress * span)  # accents on a declining baseline
    final_move = (-2.0 + pros.final_st) * span
    targets_t.append(last)
    targets_st.append(targets_st[-1] + final_move)
    frame = np.arange(n)
    st = np.interp(frame, targets_t, targets_st)
    smooth = max(1, int(0.05 * sr))
    st = np.convolve(np.pad(st, smooth, mode="edge"), np.ones(smooth) / smooth, mode="same")[smooth:-smooth]
    t = frame / sr
    st = st + pros.f0_st + pros.tremor_st * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
    # Jitter: fresh random perturbation about every 5 ms (roughly one glottal cycle).
    jitter = max(0.0, voice.jitter + pros.jitter)
    hold = max(1, int(0.005 * sr))
    noise = np.repeat(rng.normal(0, 1, size=n // hold + 1), hold)[:n]
    f0 = voice.f0_hz * 2.0 ** (st / 12.0) * (1.0 + jitter * noise)
    return np.clip(f0, 50.0, 600.0)


def _glottal_source(f0: np.ndarray, sr: int, tension: float, shimmer: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Differentiated Rosenberg pulses following ``f0``; returns (source, glottal flow)."""
    phase = np.cumsum(f0 / sr)
    frac = phase - np.floor(phase)
    opening = 0.40
    closing = float(np.clip(0.16 * np.exp(-0.12 * tension), 0.05, 0.35))  # tense: abrupt closure
    flow = np.where(frac < opening, 0.5 * (1 - np.cos(np.pi * frac / opening)), 0.0)
    closing_part = (frac >= opening) & (frac < opening + closing)
    flow[closing_part] = np.cos(np.pi * (frac[closing_part] - opening) / (2 * closing))
    cycle = np.floor(phase).astype(np.int64)
    amp = 1.0 + max(0.0, shimmer) * rng.normal(0, 1, size=cycle[-1] + 2)
    flow = flow * amp[cycle]
    source = np.diff(flow, prepend=flow[0]) * sr / 200.0
    return source, flow


def _tilt(x: np.ndarray, tilt: float) -> np.ndarray:
    """First-order spectral tilt: ``x + g (x[n] - x[n-1])``, g from about -6..+9 dB at Nyquist."""
    g = float(np.clip(0.12 * tilt, -0.4, 1.2))
    return x + g * np.diff(x, prepend=x[0])


def _resonator_sos(freq: np.ndarray, bw: np.ndarray, sr: int) -> np.ndarray:
    """Second-order sections (unity gain at DC) for formant frequencies and bandwidths."""
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a1, a2 = -2 * r * np.cos(theta), r * r
    sos = np.zeros((len(freq), 6))
    sos[:, 0] = 1 + a1 + a2
    sos[:, 3], sos[:, 4], sos[:, 5] = 1.0, a1, a2
    return sos


def _vocal_tract(source: np.ndarray, segments: list[_Segment], sr: int, voice: Voice,
                 pros: Prosody) -> np.ndarray:
    """Filter the voiced source through formant tracks that follow the vowels, block by block."""
    from scipy import signal  # imported here: a second of start-up every command would pay

    n = len(source)
    block = max(1, int(0.005 * sr))
    n_blocks = int(np.ceil(n / block))
    scale = voice.formant_scale * (1.0 + pros.formant)
    neutral = np.array([500.0, 1500.0, 2500.0])
    tracks = np.tile(neutral * scale, (n_blocks, 1))
    for seg in segments:
        if seg.kind in ("vowel", "nasal") and seg.detail in _VOWELS:
            fs = np.array(_VOWELS[seg.detail], dtype=float) * scale
            tracks[seg.start // block: max(seg.start // block + 1, seg.end // block)] = fs
    # Co-articulation: formants glide over about 30 ms.
    width = 7
    kernel = np.ones(width) / width
    tracks = np.stack([np.convolve(np.pad(tracks[:, k], width, mode="edge"), kernel, "same")[width:-width]
                       for k in range(3)], axis=1)
    f4 = 3500.0 * scale
    nyquist_guard = 0.45 * sr
    freqs = np.minimum(np.column_stack([tracks, np.full(n_blocks, f4)]), nyquist_guard)
    sos = _resonator_sos(freqs.ravel(), np.tile([80.0, 110.0, 160.0, 250.0], n_blocks), sr).reshape(n_blocks, 4, 6)
    # one call per run of blocks with the same formants (a held vowel), the state carried across
    starts = np.flatnonzero(np.r_[True, np.any(sos[1:] != sos[:-1], axis=(1, 2))])
    out = np.empty(n)
    zi = np.zeros((4, 2))
    for first, end in zip(starts, np.r_[starts[1:], n_blocks]):
        seg = slice(first * block, min(n, end * block))
        out[seg], zi = signal.sosfilt(sos[first], source[seg], zi=zi)
    return out


def _envelope(segments: list[_Segment], n: int, sr: int, kinds: tuple[str, ...]) -> np.ndarray:
    """A 0-1 gate over the segments of the given kinds, with 8 ms ramps against clicks."""
    gate = np.zeros(n)
    for seg in segments:
        if seg.kind in kinds:
            gate[seg.start:seg.end] = 1.0
    ramp = max(1, int(0.008 * sr))
    return np.convolve(gate, np.ones(ramp) / ramp, mode="same")


def render_clip(emotion: int, intensity: int, statement: int, voice: Voice, habit: np.ndarray,
                rng: np.random.Generator, sr: int = DEFAULT_SR) -> np.ndarray:
    """Render one utterance as float32 samples in [-1, 1]."""
    from scipy import signal  # imported here: a second of start-up every command would pay

    pros = clip_prosody(emotion, intensity, habit, voice, rng)
    lead, trail = rng.uniform(0.35, 0.75), rng.uniform(0.35, 0.75)
    segments = _plan_segments(statement, pros, voice, sr, rng, lead)
    n = segments[-1].end + int(trail * sr)

    f0 = _f0_contour(segments, n, sr, voice, pros, rng)
    tension = voice.tension + pros.tilt
    source, flow = _glottal_source(f0, sr, tension, voice.shimmer + pros.shimmer, rng)
    breath = float(np.clip(voice.breath + pros.breath, 0.0, 0.4))
    aspiration = rng.normal(0, 1, n) * (0.3 + 0.7 * flow) * breath * 1.5
    voiced_gate = _envelope(segments, n, sr, ("vowel", "nasal", "vfric"))
    nasal_gate = _envelope(segments, n, sr, ("nasal",))
    excitation = _tilt(source, tension) + aspiration
    voiced = _vocal_tract(excitation * voiced_gate * (1.0 - 0.6 * nasal_gate), segments, sr, voice, pros)

    # Accented syllables are louder; the phrase gets quieter towards its end.
    accent_gain = np.ones(n)
    for seg in segments:
        if seg.kind == "vowel" and seg.accent:
            accent_gain[seg.start:seg.end] = 10 ** (1.5 * seg.accent * np.exp(pros.f0_range * 0.5) / 20)
    accent_gain = np.convolve(accent_gain, np.ones(int(0.02 * sr)) / int(0.02 * sr), mode="same")
    voiced *= accent_gain

    noise = np.zeros(n)
    white = rng.normal(0, 1, n)
    for seg in segments:
        if seg.kind in ("fric", "vfric", "burst"):
            lo, hi = _NOISE_BANDS[seg.detail]
            band = signal.butter(2, [lo, min(hi, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
            pad = int(0.01 * sr)
            a, b = max(0, seg.start - pad), min(n, seg.end + pad)
            burst = signal.sosfilt(band, white[a:b])
            gate = np.zeros(b - a)
            gate[seg.start - a: seg.end - a] = 1.0
            if seg.kind == "burst":
                gate[seg.start - a: seg.end - a] = np.exp(-np.linspace(0, 4, seg.end - seg.start))
            gate = np.convolve(gate, np.ones(pad // 2 or 1) / (pad // 2 or 1), mode="same")
            level = {"fric": 0.03, "vfric": 0.015, "burst": 0.05}[seg.kind]
            noise[a:b] += burst * gate * level

    speech = voiced / (np.std(voiced[voiced_gate > 0.5]) + 1e-9) * 0.05 + noise
    gain_db = voice.loud_db + pros.loud_db
    speech *= 10 ** (gain_db / 20)

    # Microphone colour of this actor's session, then the room noise floor.
    mic = signal.iirpeak(voice.mic_peak_hz, 2.0, fs=sr)
    coloured = signal.lfilter(*mic, speech)
    speech = speech + (10 ** (voice.mic_peak_db / 20) - 1) * coloured
    speech = _tilt(speech, voice.mic_tilt)
    floor = 10 ** ((voice.noise_db + rng.normal(0, 2)) / 20)
    room = signal.lfilter([1.0], [1.0, -0.95], rng.normal(0, 1, n)) * 0.3
    wave = speech + floor * room
    wave = np.tanh(wave * 1.1) / 1.1  # gentle limiting, as a recorder's limiter would
    return wave.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------
def clip_names(actors: int | list[int] = 24) -> list[ClipName]:
    """All RAVDESS speech file names for the given actors (a count means actors 1..count)."""
    actor_list = list(range(1, actors + 1)) if isinstance(actors, int) else sorted(actors)
    names = []
    for actor in actor_list:
        for emotion in EMOTIONS:
            for intensity in ((1,) if emotion == 1 else (1, 2)):
                for statement in STATEMENTS:
                    for repetition in (1, 2):
                        names.append(ClipName(3, 1, emotion, intensity, statement, repetition, actor))
    return names


def synthesize(name: ClipName, seed: int = 0, sr: int = DEFAULT_SR) -> np.ndarray:
    """The waveform of the clip called ``name`` in the corpus made from ``seed``."""
    voice, habits = make_voice(name.actor, seed)
    rng = np.random.default_rng([seed, name.actor, name.emotion, name.intensity, name.statement,
                                 name.repetition])
    return render_clip(name.emotion, name.intensity, name.statement, voice, habits[name.emotion], rng, sr)


def _write_actor(args: tuple[Path, int, int, int]) -> int:
    out, actor, seed, sr = args
    folder = out / f"Actor_{actor:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    names = clip_names([actor])
    for name in names:
        sf.write(str(folder / name.filename()), synthesize(name, seed, sr), sr, subtype="PCM_16")
    return len(names)


def generate(out: str | Path, actors: int = 24, seed: int = 0, sr: int = DEFAULT_SR,
             workers: int | None = None, progress: bool = True) -> Path:
    """Write the synthetic corpus to ``out`` (``Actor_XX/03-01-...wav``) and return ``out``.

    ``actors`` actors (odd male, even female) x 60 clips each. A corpus already complete with the
    same parameters is left as is; ``synth.json`` is written last, so an interrupted run is redone.
    """
    if not 1 <= actors <= 99:
        raise ValueError(f"actors must be between 1 and 99, got {actors}")
    out = Path(out).expanduser()
    params = {"version": SYNTH_VERSION, "actors": actors, "seed": seed, "sample_rate": sr}
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            if {k: v for k, v in json.loads(manifest.read_text()).items() if k in params} == params:
                log.info("synthetic corpus already in %s", out)
                return out
        except json.JSONDecodeError:
            pass
        manifest.unlink()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(out, actor, seed, sr) for actor in range(1, actors + 1)]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    bar = tqdm(total=len(jobs) * 60, unit="clip", desc="synthesising", disable=not progress)
    if workers > 1:
        with process_pool(workers) as pool:
            for count in pool.map(_write_actor, jobs):
                bar.update(count)
    else:
        for job in jobs:
            bar.update(_write_actor(job))
    bar.close()
    params.update(clips=len(jobs) * 60, seconds=round(time.perf_counter() - start, 2),
                  description="ser_lib synthetic RAVDESS-layout corpus (source-filter voices)")
    manifest.write_text(json.dumps(params, indent=2))
    log.info("wrote %d clips to %s in %.1f s", params["clips"], out, params["seconds"])
    return out


def corpus_dir(actors: int = 24, seed: int = 0) -> Path:
    """Where the synthetic corpus with these parameters lives in the cache."""
    return paths.cache_dir() / f"synthetic-v{SYNTH_VERSION}-{actors}actors-seed{seed}"


def default_corpus(actors: int = 24, seed: int = 0, progress: bool = True) -> Path:
    """The built-in synthetic corpus (the default dataset everywhere), generated on first use."""
    return generate(corpus_dir(actors, seed), actors=actors, seed=seed, progress=progress)


def write_examples(out: str | Path, actor: int = 1, seed: int = 0, intensity: int = 2,
                   statement: int = 1, sr: int = DEFAULT_SR) -> list[Path]:
    """One clip per emotion for listening (neutral at normal intensity, the others at ``intensity``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for emotion, label in EMOTIONS.items():
        name = ClipName(3, 1, emotion, 1 if emotion == 1 else intensity, statement, 1, actor)
        path = out / f"{emotion:02d}_{label}_{name.filename()}"
        sf.write(str(path), synthesize(name, seed, sr), sr, subtype="PCM_16")
        paths.append(path)
    return paths


def write_demo_clip(path: str | Path, emotions: tuple[int, ...] = (5, 4, 3, 1), actor: int = 2, seed: int = 0,
                    pause: float = 1.5, sr: int = DEFAULT_SR) -> Path:
    """One file with a strong clip of each emotion in ``emotions`` and pauses between them (a
    stand-in for a microphone in notebook 06)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(pause * sr), dtype=np.float32)
    parts = [gap]
    for emotion in emotions:
        name = ClipName(3, 1, emotion, 1 if emotion == 1 else 2, 1, 1, actor)
        parts += [synthesize(name, seed, sr), gap]
    sf.write(str(path), np.concatenate(parts), sr, subtype="PCM_16")
    return path


def voice_table(actors: int = 24, seed: int = 0) -> list[dict]:
    """The voices of a corpus as plain dicts (for the dataset-tour notebook)."""
    return [asdict(make_voice(a, seed)[0]) for a in range(1, actors + 1)]
