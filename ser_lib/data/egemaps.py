"""eGeMAPS: the field's standard acoustic parameter set, computed by openSMILE.

The extended Geneva Minimalistic Acoustic Parameter Set (Eyben et al., 2016, IEEE Trans. Affective
Computing 7(2)) is 88 functionals of 25 low-level descriptors: pitch, jitter, shimmer, loudness,
harmonics-to-noise ratio, formants and their bandwidths, alpha ratio, Hammarberg index, spectral
slopes, MFCC 1-4, rates of voiced segments and their lengths. The classical SER baseline feeds them
to a linear SVM. ``opensmile`` (audEERING's official Python wrapper, with the openSMILE binary in
its wheel) computes them; about 50 ms per 3 s clip on one CPU core.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import ConfigError

FEATURE_SET = "eGeMAPSv02"


@functools.lru_cache(maxsize=1)
def _smile():
    try:
        import opensmile
    except ImportError:
        raise ConfigError("eGeMAPS needs openSMILE's Python wrapper: pip install opensmile") from None
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SET),
                           feature_level=opensmile.FeatureLevel.Functionals)


def available() -> bool:
    """Whether ``opensmile`` can be imported."""
    try:
        _smile()
    except ConfigError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """The 88 functionals' names, in openSMILE's order."""
    return tuple(_smile().feature_names)


def version() -> str:
    import opensmile

    return f"{FEATURE_SET}/opensmile-{opensmile.__version__}"


def functionals(wave: np.ndarray, sr: int) -> np.ndarray:
    """The 88 eGeMAPS functionals of one mono clip (float32; NaN or infinite values become 0)."""
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if len(wave) < sr // 10:  # openSMILE needs a few frames; pad very short clips with silence
        wave = np.pad(wave, (0, sr // 10 - len(wave)))
    values = _smile().process_signal(wave, sr).to_numpy(dtype=np.float64)[0]
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
