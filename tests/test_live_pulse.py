"""Live capture for real: a clip played into a PulseAudio null sink, recorded by MicrophoneSource.

Needs PulseAudio (pulseaudio, pactl, paplay), the ALSA pulse plugin and PortAudio; `.ci/run`
installs them (libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins).
"""
import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from ser_lib.data import audio
from ser_lib.inference import Predictor

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def _missing() -> str | None:
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install pulseaudio pulseaudio-utils)"
    if ctypes.util.find_library("portaudio") is None:
        return "PortAudio not installed (apt-get install libportaudio2)"
    if not any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
                                          "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
                                          "/usr/lib64/alsa-lib/libasound_module_pcm_pulse.so")):
        return "the ALSA pulse plugin is not installed (apt-get install libasound2-plugins)"
    return None


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    runtime = tmp_path_factory.mktemp("pulse")
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(runtime))
    started = subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit=no", "-n",
         "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=ser_sink"],
        env=env, capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "ser_sink"], env=env, check=True)
    subprocess.run(["pactl", "set-default-source", "ser_sink.monitor"], env=env, check=True)
    yield env
    subprocess.run(["pactl", "exit"], env=env, capture_output=True)


def test_microphone_capture_gives_the_offline_predictions(pulse, trained_run, corpus8, tmp_path):
    clip_wave = audio.load(corpus8 / "Actor_08" / "03-01-05-02-01-01-08.wav")
    silence = np.zeros(16000, dtype=np.float32)
    clip = tmp_path / "played.wav"
    sf.write(str(clip), np.concatenate([silence, clip_wave, silence]), 16000, subtype="PCM_16")
    out = tmp_path / "capture.npz"
    model = trained_run / "best_model.pt"
    env = dict(pulse, PYTHONPATH=str(HERE.parent))
    run = subprocess.run([sys.executable, str(HERE / "live_capture.py"), str(model), str(clip), str(out)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = np.load(out)
    assert int(data["player_rc"]) == 0 and int(data["dropped"]) == 0
    captured, sr = data["captured"], int(data["sample_rate"])

    # the recording is the clip (resampled to 44.1 kHz by the sink and back); the null sink's
    # monitor only delivers audio while something plays, so the two are aligned first
    played = audio.load(clip)
    corr = signal.correlate(captured, played, mode="full", method="fft")
    lag = int(np.argmax(np.abs(corr))) - (len(played) - 1)  # captured[n] ~ played[n - lag]
    first, last = max(0, lag), min(len(captured), len(played) + lag)
    aligned, reference = captured[first:last], played[first - lag:last - lag]
    assert len(aligned) > 0.9 * len(played)
    assert np.corrcoef(aligned, reference)[0, 1] > 0.95

    # every streamed window equals the offline prediction of the same captured samples
    predictor = Predictor.from_checkpoint(model, device="cpu")
    speech = data["speech"]
    assert speech.sum() >= 3 and not speech[0]
    for start, end, probs in zip(data["starts"][speech], data["ends"][speech], data["probs"][speech]):
        np.testing.assert_allclose(probs, predictor.predict(captured[start:end], sr).probs, atol=1e-5)

    # and the captured clip is classified like the original file
    original = predictor.predict(reference, 16000)
    recorded = predictor.predict(aligned, sr)
    assert recorded.label == original.label
    np.testing.assert_allclose(recorded.probs, original.probs, atol=0.05)
