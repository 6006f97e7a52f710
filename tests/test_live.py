import logging
import time

import numpy as np
import pytest

from ser_lib.errors import DeviceError
from ser_lib.inference import Predictor, StreamSettings, live


@pytest.fixture(scope="module")
def predictor(trained_run):
    return Predictor.from_checkpoint(trained_run / "best_model.pt", device="cpu")


@pytest.fixture(scope="module")
def clip(corpus8):
    return corpus8 / "Actor_08" / "03-01-05-02-01-01-08.wav"


def test_file_source_paces_in_real_time_or_runs_fast(clip):
    fast = live.FileSource(clip, realtime=False)
    t0 = time.perf_counter()
    blocks = list(fast.blocks())
    assert time.perf_counter() - t0 < 0.5
    assert sum(len(b) for b in blocks) == len(fast.wave)
    paced = live.FileSource(clip, realtime=True)
    duration = len(paced.wave) / paced.sample_rate
    t0 = time.perf_counter()
    list(paced.blocks())
    assert time.perf_counter() - t0 > 0.9 * duration


def test_widget_driven_by_its_buttons(predictor, clip):
    source = live.FileSource(clip, realtime=False)
    demo = live.LiveDemo(predictor, source=source)
    assert [c.description for c in demo.widget.children[0].children[1:]] == ["voice", "start", "stop"]
    assert demo.stop_button.disabled and demo.vad_picker.value == "silero"  # the default, when installed
    demo.start_button.click()
    demo.wait(timeout=60)
    assert demo.error is None and demo.stream.gate.name == "silero"
    assert demo.results and not demo.start_button.disabled and demo.stop_button.disabled
    last_speech = [r for r in demo.results if r.speech][-1]
    if demo.results[-1].speech:
        assert sum(bar.value for bar in demo.bars.values()) == pytest.approx(1.0, abs=1e-4)
    assert last_speech.label in predictor.labels
    assert demo.timeline.value.count("<div title=") == len(demo.results)
    assert any(label in demo.current.value for label in predictor.labels + ["no speech"])


def test_widget_gate_picker_chooses_the_energy_gate(predictor, clip):
    demo = live.LiveDemo(predictor, source=live.FileSource(clip, realtime=False))
    assert dict(demo.vad_picker.options) == {"Silero VAD": "silero", "energy gate": "energy"}
    demo.vad_picker.value = "energy"
    demo.start_button.click()
    demo.wait(timeout=60)
    assert demo.error is None and demo.stream.gate.name == "energy" and demo.results
    chosen = live.LiveDemo(predictor, source=live.FileSource(clip), settings=StreamSettings(vad="energy"))
    assert chosen.vad_picker.value == "energy"


def test_stop_button_stops_a_running_source(predictor, clip):
    source = live.FileSource(clip, realtime=True, loop=True)  # would run forever
    demo = live.LiveDemo(predictor, source=source)
    demo.start_button.click()
    time.sleep(2.0)
    assert demo._thread.is_alive() and demo.stop_button.disabled is False
    demo.stop_button.click()
    demo.wait(timeout=5)
    assert not demo._thread.is_alive() and demo.results


def test_missing_portaudio_gives_install_instructions(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(DeviceError, match="apt-get install libportaudio2"):
        live.MicrophoneSource()


class FakeSoundDevice:
    """Stands in for sounddevice: one input device, a stream that never calls back by itself."""

    class PortAudioError(Exception):
        pass

    class default:
        device = (0, 0)

    def query_devices(self, device=None, kind=None):
        devices = [{"name": "fake mic", "max_input_channels": 1, "default_samplerate": 16000.0}]
        if device is None and kind is None:
            return devices
        if device not in (None, 0, "fake mic"):
            raise ValueError(f"No input device matching {device!r}")
        return devices[0]


def test_queue_overflow_is_counted_and_reported(monkeypatch, caplog):
    monkeypatch.setattr(live, "import_sounddevice", lambda: FakeSoundDevice())
    mic = live.MicrophoneSource(max_queue=3)
    block = np.zeros((1600, 1), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="ser_lib.inference.live"):
        for _ in range(5):
            mic._callback(block, 1600, None, None)
    assert mic.queue.qsize() == 3 and mic.dropped == 2
    assert "inference is too slow" in caplog.text


def test_unknown_device_lists_the_available_ones(monkeypatch):
    monkeypatch.setattr(live, "import_sounddevice", lambda: FakeSoundDevice())
    with pytest.raises(DeviceError, match="(?s)no input device 'usb headset'.*fake mic"):
        live.MicrophoneSource("usb headset")


def test_text_view_prints_one_line_per_hop(predictor, clip, capsys):
    from ser_lib.inference.streaming import StreamingPredictor, run_stream

    source = live.FileSource(clip, realtime=False)
    stream = StreamingPredictor(predictor, source.sample_rate)
    results = run_stream(stream, source, live.TextView())
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(results) > 0
