"""Voice-activity gates (Silero VAD and the energy gate) and the noises they are tested in."""
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from ser_lib.data import audio, noise, synth
from ser_lib.errors import ConfigError
from ser_lib.inference import vad
from ser_lib.inference.vad import EnergyGate, SileroGate, make_gate
from conftest import run_cli

SR = 16000
HOP = SR // 2


@pytest.fixture(scope="module")
def synthetic_clips() -> list[np.ndarray]:
    folder = tempfile.mkdtemp(prefix="ser-vad-test-")
    return [audio.load(p) for p in synth.write_examples(folder, actor=3)]


def _session(clips, rng) -> np.ndarray:
    parts = [np.zeros(2 * SR, dtype=np.float32)]
    for clip in clips:
        parts += [clip, np.zeros(int(rng.uniform(1.0, 2.5) * SR), dtype=np.float32)]
    return np.concatenate(parts)


def _hops(gate, wave) -> np.ndarray:
    gate.reset()
    return np.array([gate.update(wave[i:i + HOP], SR) for i in range(0, len(wave) - HOP + 1, HOP)])


def _precision_recall(flags, truth) -> tuple[float, float]:
    tp = np.sum(flags & truth)
    return tp / max(flags.sum(), 1), tp / max(truth.sum(), 1)


def test_noises_have_their_spectral_shape_and_mix_at_the_asked_snr():
    rng = np.random.default_rng(0)
    n = SR * 8
    freqs = np.fft.rfftfreq(n, 1 / SR)

    def band_db(wave, lo, hi):
        power, at = np.abs(np.fft.rfft(wave)) ** 2, np.fft.rfftfreq(len(wave), 1 / SR)
        return 10 * np.log10(power[(at >= lo) & (at < hi)].mean())

    for colour, slope in (("white", 0.0), ("pink", -3.0), ("brown", -6.0)):  # dB per octave
        wave = noise.coloured(n, colour, rng, SR)
        measured = (band_db(wave, 1600, 3200) - band_db(wave, 200, 400)) / 3
        assert abs(measured - slope) < 0.8, (colour, measured)
    assert band_db(noise.coloured(n, "brown", rng, SR), 1, 15) < -100  # no rumble below 20 Hz
    odd = 48_017  # a prime length: pink noise is shaped at a faster FFT length and cut to this one
    pink = noise.coloured(odd, "pink", rng, SR)
    assert len(pink) == odd and abs((band_db(pink, 1600, 3200) - band_db(pink, 200, 400)) / 3 + 3.0) < 0.8
    assert len(noise.coloured(odd, "brown", rng, SR)) == odd
    hum = noise.hum(n, rng, SR)
    spectrum = np.abs(np.fft.rfft(hum))
    peaks = np.round(freqs[np.argsort(spectrum)[-3:]]).astype(int)
    assert set(peaks) == {50, 100, 150} and peaks[-1] == 50  # mains at 50 Hz and its first harmonics
    speech = np.concatenate([np.zeros(SR), rng.standard_normal(SR)]).astype(np.float32)
    active = speech != 0
    for snr in (20.0, 0.0, -5.0):
        mixed_noise = noise.scale_to_snr(speech, noise.coloured(2 * SR, "pink", rng), snr, active)
        measured = 10 * np.log10(np.mean(speech[active] ** 2) / np.mean(mixed_noise ** 2))
        assert abs(measured - snr) < 1e-6
    with pytest.raises(ValueError, match="babble needs clips"):
        noise.make("babble", 100, rng)


def test_speech_activity_marks_the_loud_frames_of_a_clean_clip(synthetic_clips):
    clip = synthetic_clips[2]
    wave = np.concatenate([np.zeros(SR, dtype=np.float32), clip, np.zeros(SR, dtype=np.float32)])
    active = noise.speech_activity(wave, SR, frame=0.032)
    frames = int(round(0.032 * SR))
    assert not active[:SR // frames].any() and not active[-(SR // frames):].any()
    assert active.sum() * 0.032 > 0.5  # the synthetic sentence speaks for more than half a second


def test_silero_gate_finds_speech_in_stationary_noise_where_the_energy_gate_misses_it(synthetic_clips):
    rng = np.random.default_rng(1)
    clean = _session(synthetic_clips[:5], rng)
    truth = noise.speech_hops(clean, HOP, SR)
    active = np.repeat(noise.speech_activity(clean, SR, frame=512 / SR), 512).astype(bool)
    silero, energy = SileroGate(), EnergyGate()
    for kind in ("pink", "hum"):
        n = len(active)
        mixed = clean[:n] + noise.scale_to_snr(clean[:n], noise.make(kind, n, rng, SR), 5.0, active)
        mixed = mixed.astype(np.float32)
        p_silero, r_silero = _precision_recall(_hops(silero, mixed), truth)
        p_energy, r_energy = _precision_recall(_hops(energy, mixed), truth)
        assert p_silero >= 0.75 and r_silero >= 0.75, (kind, p_silero, r_silero)
        assert r_energy < 0.3, (kind, r_energy)  # 5 dB is too little level for an energy threshold


def test_silero_gate_stays_closed_on_a_hum_that_opens_the_energy_gate():
    rng = np.random.default_rng(2)
    quiet = rng.normal(0, 1e-4, 2 * SR)
    hum = 0.05 * noise.hum(6 * SR, rng, SR)  # a fan or transformer switched on: -26 dBFS
    wave = np.concatenate([quiet, hum]).astype(np.float32)
    assert _hops(EnergyGate(), wave)[4:].any()
    silero = SileroGate()
    assert not _hops(silero, wave).any()
    assert silero.score < silero.threshold


def test_silero_gate_sees_one_continuous_signal_whatever_the_hop(synthetic_clips):
    wave = np.concatenate(synthetic_clips[:2])
    gate = SileroGate()
    whole = gate.speech_probs(wave, SR)
    gate.reset()
    rng = np.random.default_rng(3)
    parts, i = [], 0
    while i < len(wave):
        n = int(rng.integers(100, 9000))
        parts.append(gate.speech_probs(wave[i:i + n], SR))
        i += n
    pieces = np.concatenate(parts)
    assert len(whole) == len(pieces) == len(wave) // 512
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:3].max() < 0.2  # speech somewhere, not in the leading silence


def test_silero_gate_takes_any_sample_rate_in_blocks_of_any_size(synthetic_clips):
    wave = synthetic_clips[1]
    gate = SileroGate()
    at16 = gate.speech_probs(wave, SR)
    gate.reset()
    wave44 = audio.resample(wave, SR, 44100)
    at44 = gate.speech_probs(wave44, 44100)
    assert abs(len(at44) - len(at16)) <= 2  # the streaming resampler holds back a few samples
    n = min(len(at16), len(at44))
    assert np.mean((at16[:n] > 0.5) == (at44[:n] > 0.5)) > 0.95
    gate.reset()
    blocks = [gate.speech_probs(wave44[i:i + 3001], 44100) for i in range(0, len(wave44), 3001)]
    np.testing.assert_allclose(np.concatenate(blocks), at44, atol=1e-5)  # one continuous signal


def test_a_hop_too_short_for_a_chunk_leaves_the_gate_as_it_was(synthetic_clips):
    gate = SileroGate()
    speech = synthetic_clips[0]
    assert gate.update(speech, SR)
    quiet = np.zeros(100, dtype=np.float32)  # completes no 512-sample chunk
    assert [gate.update(quiet, SR) for _ in range(3)] == [True, True, True]


def test_energy_gate_started_in_speech_opens_at_the_first_pause(synthetic_clips):
    speech = np.concatenate(synthetic_clips[:2])
    start = int(np.argmax(np.abs(speech) > 0.05))  # begin the stream in the middle of speech
    wave = np.concatenate([speech[start:], np.zeros(SR, dtype=np.float32) + 1e-4, speech]).astype(np.float32)
    flags = _hops(EnergyGate(), wave)
    first_pause = len(speech[start:]) // HOP
    assert flags[first_pause + 2:].any()  # speech after the pause opens it
    assert not flags[0]


def test_make_gate_by_name_and_without_silero(monkeypatch):
    assert isinstance(make_gate("silero"), SileroGate)
    assert isinstance(make_gate("auto"), SileroGate)
    assert isinstance(make_gate("energy"), EnergyGate)
    with pytest.raises(ConfigError, match="unknown voice-activity detector 'webrtc'"):
        make_gate("webrtc")
    with pytest.raises(ConfigError, match="off_threshold"):
        SileroGate(threshold=0.3, off_threshold=0.5)

    def missing():
        raise ImportError("No module named 'silero_vad'")

    monkeypatch.setattr(vad, "_silero_module", missing)
    assert isinstance(make_gate("auto"), EnergyGate)
    with pytest.raises(ConfigError, match="pip install silero-vad"):
        make_gate("silero")


def test_importing_silero_keeps_the_thread_count():
    code = ("import torch; torch.set_num_threads(2); from ser_lib.inference.vad import SileroGate; "
            "SileroGate(); print(torch.get_num_threads())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2"


def test_cli_infer_takes_the_gate(trained_run, synthetic_clips, tmp_path):
    import soundfile as sf

    path = tmp_path / "session.wav"
    sf.write(str(path), _session(synthetic_clips[:2], np.random.default_rng(4)), SR)
    model = str(trained_run / "best_model.pt")
    for gate in ("energy", "silero"):
        run = run_cli("infer", "--model_path", model, "--input", str(path), "--vad", gate)
        assert run.returncode == 0, run.stderr
        lines = run.stdout.strip().splitlines()
        assert "no speech" in lines[0] and any("no speech" not in line for line in lines)
    bad = run_cli("infer", "--model_path", model, "--input", str(path), "--vad", "webrtc")
    assert bad.returncode == 2 and "--vad" in bad.stderr
