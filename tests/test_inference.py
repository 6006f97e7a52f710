
import numpy as np
import pytest
import soundfile as sf

from ser_lib.data import audio
from ser_lib.errors import CheckpointError, ConfigError
from ser_lib.inference import Ensemble, Predictor, StreamingPredictor, StreamSettings
from ser_lib.inference.streaming import NO_SPEECH
from ser_lib.inference.vad import EnergyGate
from conftest import run_cli


@pytest.fixture(scope="module")
def predictor(trained_run):
    return Predictor.from_checkpoint(trained_run / "best_model.pt", device="cpu")


@pytest.fixture(scope="module")
def speech_file(corpus8, tmp_path_factory):
    """Two clips of actor 8 with silence around them, at 16 kHz (about 10 s)."""
    a = audio.load(corpus8 / "Actor_08" / "03-01-05-02-01-01-08.wav")
    b = audio.load(corpus8 / "Actor_08" / "03-01-04-02-02-01-08.wav")
    rng = np.random.default_rng(0)
    quiet = lambda s: (rng.normal(0, 1e-4, int(s * 16000))).astype(np.float32)  # noqa: E731
    wave = np.concatenate([quiet(1.0), a, quiet(1.5), b, quiet(2.5)])
    path = tmp_path_factory.mktemp("stream") / "speech.wav"
    sf.write(str(path), wave, 16000, subtype="FLOAT")
    return path


def test_predictor_uses_the_checkpoint_labels_and_any_rate(predictor, speech_file, tmp_path):
    assert predictor.labels == ["neutral", "happy", "sad", "angry"]
    p16 = predictor.predict_file(speech_file)
    assert p16.probs.shape == (4,) and abs(p16.probs.sum() - 1) < 1e-5
    assert set(p16.as_dict()) == set(predictor.labels) and p16.label in predictor.labels
    wave16 = audio.load(speech_file)
    sf.write(str(tmp_path / "48k.wav"), audio.resample(wave16, 16000, 48000), 48000, subtype="FLOAT")
    p48 = predictor.predict_file(tmp_path / "48k.wav")
    assert p48.label == p16.label
    np.testing.assert_allclose(p48.probs, p16.probs, atol=0.05)
    np.testing.assert_allclose(predictor.predict(wave16, 16000).probs, p16.probs, atol=1e-6)


def _random_blocks(wave, rng):
    i = 0
    while i < len(wave):
        n = int(rng.integers(1, 5000))
        yield wave[i:i + n]
        i += n


def test_streamed_windows_equal_offline_predictions_for_any_block_sizes(predictor, speech_file):
    wave = audio.load(speech_file)
    runs = []
    for seed in (0, 1):
        # fixed speaker statistics: windowing alone must not change a prediction
        stream = StreamingPredictor(predictor, 16000, StreamSettings(window=3.0, hop=0.5), adapt=False)
        runs.append(stream.process(_random_blocks(wave, np.random.default_rng(seed))))
    a, b = runs
    assert len(a) == len(b) == len(wave) // 8000 - 1  # hops from 1 s on (min_seconds) to the end
    spoken = [r for r in a if r.speech]
    assert len(spoken) >= 6
    for r in spoken:
        offline = predictor.predict(wave[r.start:r.end], 16000).probs
        np.testing.assert_allclose(r.probs, offline, atol=1e-5)
        assert r.end - r.start == min(48000, r.end) and r.latency_ms > 0
    for ra, rb in zip(a, b):  # the block sizes do not matter
        assert ra.speech == rb.speech and ra.label == rb.label
        if ra.speech:
            np.testing.assert_allclose(ra.probs, rb.probs, atol=1e-6)


def test_stream_at_another_sample_rate(predictor, speech_file):
    wave = audio.resample(audio.load(speech_file), 16000, 44100)
    stream = StreamingPredictor(predictor, 44100, StreamSettings(window=3.0, hop=0.5), adapt=False)
    results = stream.process(_random_blocks(wave, np.random.default_rng(2)))
    spoken = [r for r in results if r.speech]
    assert spoken
    for r in spoken[:3]:
        np.testing.assert_allclose(r.probs, predictor.predict(wave[r.start:r.end], 44100).probs, atol=1e-5)


def test_silence_yields_no_speech(predictor):
    rng = np.random.default_rng(0)
    stream = StreamingPredictor(predictor, 16000)
    results = stream.feed(rng.normal(0, 3e-4, 16000 * 4).astype(np.float32))
    results += stream.feed(np.zeros(16000 * 2, dtype=np.float32))
    assert results and all(not r.speech and r.label == NO_SPEECH and r.probs is None for r in results)


def test_speech_after_silence_opens_and_closes_the_gate(predictor, speech_file):
    wave = audio.load(speech_file)
    results = StreamingPredictor(predictor, 16000).process([wave])
    flags = [r.speech for r in results]
    assert not flags[0] and any(flags) and not flags[-1]
    assert all(r.label in predictor.labels for r in results if r.speech)


def test_gate_hysteresis_does_not_flicker():
    gate = EnergyGate(hangover=2)
    levels = [-70] * 5 + [-30] * 4 + [-66] + [-30] * 3 + [-66, -67] + [-30] * 2 + [-70] * 5
    states = [gate.step(level) for level in levels]
    assert states[:5] == [False] * 5
    assert all(states[5:18])  # one- and two-hop dips inside speech keep the gate open
    assert states[-1] is False and states[-5:].count(True) <= 3  # closes after the hang-over
    # a level between the two thresholds does not open a closed gate
    quiet = EnergyGate()
    assert not any(quiet.step(level) for level in [-70] * 5 + [-62] * 5)


def test_stream_rejects_bad_settings(predictor):
    from ser_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="hop <= window"):
        StreamingPredictor(predictor, 16000, StreamSettings(window=1.0, hop=2.0))


def test_int8_quantisation_keeps_predictions(trained_run, tiny_backbone, corpus8, tmp_path):
    from ser_lib import training
    from conftest import small_train_config

    run = tmp_path / "w2v2"
    training.train(small_train_config(corpus8, run, backbone=str(tiny_backbone), quick=True))
    plain = Predictor.from_checkpoint(run / "best_model.pt", device="cpu")
    fast = Predictor.from_checkpoint(run / "best_model.pt", device="cpu", optimize="int8")
    import torch

    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in fast.model.modules())
    for wav in sorted((corpus8 / "Actor_08").glob("*.wav"))[:5]:
        np.testing.assert_allclose(fast.predict_file(wav).probs, plain.predict_file(wav).probs, atol=0.02)


def test_an_ensemble_predicts_adapts_and_streams_the_mean_of_its_models(trained_run, second_run, speech_file):
    paths = [trained_run / "best_model.pt", second_run / "best_model.pt"]
    members = [Predictor.from_checkpoint(p, device="cpu") for p in paths]
    ensemble = Ensemble(members)
    alone = [m.predict_file(speech_file).probs for m in members]
    assert not np.allclose(alone[0], alone[1], atol=1e-3)  # two different models
    cold = ensemble.predict_file(speech_file)
    np.testing.assert_allclose(cold.probs, np.mean(alone, axis=0), atol=1e-6)
    wave = audio.load(speech_file)
    stream = StreamingPredictor(ensemble, 16000, StreamSettings(window=3.0, hop=0.5), adapt=False)
    spoken = [r for r in stream.process(_random_blocks(wave, np.random.default_rng(3))) if r.speech]
    assert spoken
    for r in spoken[:3]:
        offline = np.mean([m.predict(wave[r.start:r.end], 16000).probs for m in members], axis=0)
        np.testing.assert_allclose(r.probs, offline, atol=1e-5)
    # a stream that adapts: every model hears every spoken hop, as each would streamed alone
    listening = StreamingPredictor(Ensemble([Predictor.from_checkpoint(p, device="cpu") for p in paths]), 16000,
                                   StreamSettings(window=3.0, hop=0.5))
    heard = listening.process([wave])
    alone_streams = [StreamingPredictor(Predictor.from_checkpoint(p, device="cpu"), 16000,
                                        StreamSettings(window=3.0, hop=0.5)).process([wave]) for p in paths]
    for r, *single in zip(heard, *alone_streams):
        if r.speech:
            np.testing.assert_allclose(r.probs, np.mean([s.probs for s in single], axis=0), atol=1e-5)
    late = [r for r in heard if r.speech][-1]
    fixed = {r.end: r for r in spoken}[late.end]  # the same window, with the training statistics
    assert not np.allclose(late.probs, fixed.probs, atol=1e-4)  # hearing the speaker changed the predictions
    ensemble.adapt([speech_file])  # every model hears the speaker
    fresh = [Predictor.from_checkpoint(p, device="cpu") for p in paths]
    for predictor in fresh:
        predictor.adapt([speech_file])
    adapted = ensemble.predict_file(speech_file).probs
    np.testing.assert_allclose(adapted, np.mean([f.predict_file(speech_file).probs for f in fresh], 0), atol=1e-6)
    assert not np.allclose(adapted, cold.probs, atol=1e-4)
    ensemble.new_speaker()
    np.testing.assert_allclose(ensemble.predict_file(speech_file).probs, cold.probs, atol=1e-6)


def test_an_ensemble_of_other_classes_or_the_same_model_twice_is_refused(trained_run, second_run):
    paths = [trained_run / "best_model.pt", second_run / "best_model.pt"]
    members = [Predictor.from_checkpoint(p, device="cpu") for p in paths]
    members[1].checkpoint.labels = members[1].labels[::-1]  # the same classes in another order
    with pytest.raises(CheckpointError, match="an ensemble's models must share their classes"):
        Ensemble(members)
    with pytest.raises(ConfigError, match="is given twice"):
        Ensemble.load([paths[0], trained_run / "." / "best_model.pt"], device="cpu")


def _cli(*args):
    return run_cli("infer", *args)


def test_cli_whole_file_and_timeline(trained_run, speech_file):
    model = str(trained_run / "best_model.pt")
    whole = _cli("--model_path", model, "--input", str(speech_file), "--whole")
    assert whole.returncode == 0, whole.stderr
    for label in ("neutral", "happy", "sad", "angry"):
        assert label in whole.stdout
    timeline = _cli("--model_path", model, "--input", str(speech_file))
    assert timeline.returncode == 0, timeline.stderr
    lines = timeline.stdout.strip().splitlines()
    assert len(lines) == sf.info(str(speech_file)).frames // 8000 - 1 and NO_SPEECH in lines[0]
    assert any("angry" in line or "sad" in line for line in lines)


def test_cli_infers_with_an_ensemble(trained_run, second_run, speech_file):
    paths = [trained_run / "best_model.pt", second_run / "best_model.pt"]
    run = _cli("--model_path", *map(str, paths), "--input", str(speech_file), "--whole")
    assert run.returncode == 0, run.stderr
    assert "an ensemble of 2 models" in run.stderr
    printed = {line.split()[0]: float(line.split()[1]) for line in run.stdout.splitlines()[1:]}
    members = [Predictor.from_checkpoint(p, device="cpu") for p in paths]
    alone = [m.predict_file(speech_file).probs for m in members]
    mean = np.mean(alone, axis=0)
    assert all(np.abs(a - mean).max() > 0.0015 for a in alone)  # the mean is not one model's answer (to 3 decimals)
    np.testing.assert_allclose([printed[label] for label in members[0].labels], mean, atol=6e-4)
    folders = _cli("--model_path", str(trained_run), str(second_run), "--input", str(speech_file), "--whole")
    assert folders.returncode == 0 and folders.stdout == run.stdout  # a run folder stands for its best_model.pt
    twice = _cli("--model_path", str(paths[0]), str(trained_run), "--input", str(speech_file), "--whole")
    assert twice.returncode == 2 and "is given twice" in twice.stderr and "Traceback" not in twice.stderr


def test_cli_live_window_draws_frames(trained_run, speech_file, tmp_path):
    frames = tmp_path / "frames"
    run = _cli("--model_path", str(trained_run / "best_model.pt"), "--input", str(speech_file),
               "--save-frames", str(frames))
    assert run.returncode == 0, run.stderr
    pngs = sorted(frames.glob("frame_*.png"))
    assert len(pngs) == sf.info(str(speech_file)).frames // 8000 - 1
    assert pngs[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pngs[-1].stat().st_size > 10_000


def test_cli_usage_errors(trained_run):
    run = _cli("--model_path", str(trained_run / "best_model.pt"))
    assert run.returncode == 2 and "--input FILE or --mic" in run.stderr


def test_cli_predicts_a_clip_shorter_than_the_first_window_as_a_whole(trained_run, corpus8, tmp_path):
    wave = audio.load(corpus8 / "Actor_08" / "03-01-05-02-01-01-08.wav")
    start = int(np.argmax(np.abs(wave)))
    short = tmp_path / "short.wav"
    sf.write(str(short), wave[max(0, start - 4800): start + 4800], 16000)  # 0.6 s of speech
    run = _cli("--model_path", str(trained_run / "best_model.pt"), "--input", str(short))
    assert run.returncode == 0, run.stderr
    assert "shorter than the first window (1 s): one prediction for the whole clip" in run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith(f"{short}: ") and any(label in first for label in ("neutral", "happy", "sad", "angry"))
    tiny = tmp_path / "tiny.wav"
    sf.write(str(tiny), wave[start: start + 160], 16000)  # 10 ms: too short for any prediction
    run = _cli("--model_path", str(trained_run / "best_model.pt"), "--input", str(tiny))
    assert run.returncode == 2 and "too short to classify" in run.stderr and "Traceback" not in run.stderr
