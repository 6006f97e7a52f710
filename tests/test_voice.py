"""The pretrained voice encoder's descriptors: weights found or a clear way out, layer statistics, descriptor
sets, and checkpoints that name the weights they were trained with. A randomly initialised encoder, saved
as the real file is laid out, stands in for the real weights."""
import hashlib
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from ser_lib.data import features, voice
from ser_lib.data.audio import AudioSettings
from ser_lib.errors import CheckpointError, ConfigError
from conftest import ArchiveServer, descriptors_match_clip_by_clip, run_cli

SR = 16000


def _save_encoder(path, seed: int) -> None:
    """An encoder laid out as the resemblyzer file: ``model_state`` with ``lstm.*`` and the heads around it."""
    torch.manual_seed(seed)
    lstm, linear = nn.LSTM(40, 256, 3, batch_first=True), nn.Linear(256, 256)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"linear.{k}": v for k, v in linear.state_dict().items()},
             "similarity_weight": torch.tensor([10.0]), "similarity_bias": torch.tensor([-5.0])}
    torch.save({"step": 1, "model_state": state}, path)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test downloads the real wheel: where the weights are missing, the download fails at once."""
    monkeypatch.setattr(voice, "WHEEL", replace(voice.WHEEL, url="http://nowhere.invalid/" + voice.WHEEL.filename))


@pytest.fixture
def encoder(tmp_path, monkeypatch):
    path = tmp_path / "pretrained.pt"
    _save_encoder(path, 0)
    monkeypatch.setenv(voice.ENV, str(path))
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    return path


def _speech(f0: float, seconds: float = 1.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A voiced sound whose pitch glides around ``f0``, with a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 15))
    rng = np.random.default_rng(seed)
    return (0.1 * wave / np.abs(wave).max() + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def test_statistics_are_each_layers_mean_and_spread_over_the_frames(encoder):
    wave = _speech(150.0)
    values = voice.statistics(wave, SR)
    assert values.shape == (len(voice.names()),) == (1536,) and values.dtype == np.float32
    assert voice.names()[0] == "voice_l1_mean_0" and voice.names()[-1] == "voice_l3_std_255"
    # the same weights as one three-layer LSTM: its output is the last layer's states
    state = torch.load(encoder, weights_only=True)["model_state"]
    whole = nn.LSTM(40, 256, 3, batch_first=True)
    whole.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
    with torch.no_grad():
        out, _ = whole(torch.from_numpy(voice.mel_power(wave))[None])
    np.testing.assert_allclose(values[1024:1280], out[0].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(values[1280:], out[0].std(0, correction=0).numpy(), atol=1e-5)
    assert not np.allclose(values, voice.statistics(_speech(260.0, seed=1), SR), atol=1e-3)


def test_quiet_clips_are_raised_loud_ones_keep_their_level_and_any_rate_is_resampled(encoder):
    wave = 0.2 * _speech(150.0)  # about -40 dBFS
    assert 20 * np.log10(np.sqrt(np.mean(wave ** 2))) < voice.TARGET_DBFS
    np.testing.assert_allclose(voice.statistics(0.05 * wave, SR), voice.statistics(wave, SR), atol=1e-4)
    loud = 30 * wave  # about -10 dBFS, 20 dB above the target: heard as louder
    assert np.abs(voice.statistics(loud, SR) - voice.statistics(wave, SR)).max() > 1e-2
    at48 = voice.statistics(0.2 * _speech(150.0, sr=48000), 48000)
    assert np.abs(at48 - voice.statistics(wave, SR)).max() < 0.05
    silent = voice.statistics(np.zeros(50, np.float32), SR)  # silence and clips shorter than one window
    assert silent.shape == (1536,) and np.isfinite(silent).all()


def test_missing_or_wrong_weights_say_what_to_do(tmp_path, monkeypatch):
    from ser_lib.training import TrainConfig

    monkeypatch.delenv(voice.ENV, raising=False)
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(voice.importlib.util, "find_spec", lambda name: None)
    assert not voice.available()  # looks, downloads nothing
    with pytest.raises(ConfigError, match="could not be downloaded: cannot reach nowhere.invalid .*Ways out: run "
                                          "again .*; pip install --no-deps resemblyzer==0.1.4; or set SER_VOICE_ENC"):
        voice.weights_path()
    assert not (tmp_path / "cache" / "voice-encoder" / "pretrained.pt").exists()
    with pytest.raises(ConfigError, match="--descriptor_set ser\\+voice: .*pip install.*; or train with "
                                          "--descriptor_set ser"):
        TrainConfig(descriptor_set="ser+voice").validate()
    TrainConfig(descriptor_set="ser+voice", descriptors=False).validate()  # not used: not needed
    monkeypatch.setenv(voice.ENV, str(tmp_path / "nowhere.pt"))
    with pytest.raises(ConfigError, match="is not a file"):
        voice.weights_path()
    wrong = tmp_path / "wrong.pt"
    torch.save({"model_state": {"linear.weight": torch.zeros(2, 2)}}, wrong)
    monkeypatch.setenv(voice.ENV, str(wrong))
    with pytest.raises(ConfigError, match="does not hold the voice encoder's weights.*KeyError"):
        voice.statistics(_speech(150.0), SR)
    page = tmp_path / "page.pt"  # a download that went wrong: not a weights file at all
    page.write_text("<html>404</html>")
    monkeypatch.setenv(voice.ENV, str(page))
    with pytest.raises(ConfigError, match="does not hold the voice encoder's weights"):
        voice.statistics(_speech(150.0), SR)


def test_voice_descriptors_join_the_projects_own_and_are_cached_per_weights(encoder, tmp_path, monkeypatch):
    ser, both = features.descriptor_names("ser"), features.descriptor_names("ser+voice")
    assert both == ser + voice.names()
    waves = [_speech(150.0, 2.0), _speech(220.0, 2.5, seed=1)]
    matrix, paths = descriptors_match_clip_by_clip(waves, tmp_path, "ser+voice", rtol=1e-4)
    first = voice.version()
    other = tmp_path / "other.pt"  # other weights: computed again, not read from the first weights' cache
    _save_encoder(other, 1)
    monkeypatch.setenv(voice.ENV, str(other))
    assert voice.version() != first
    _save_encoder(encoder, 2)  # the same file replaced in place is read again
    monkeypatch.setenv(voice.ENV, str(encoder))
    assert voice.version() != first
    monkeypatch.setenv(voice.ENV, str(other))
    again = features.descriptor_matrix(paths, waves, AudioSettings(), workers=1, descriptor_set="voice")
    assert not np.allclose(again, matrix[:, len(ser):], atol=1e-3)


def _describe_both(wave: np.ndarray) -> np.ndarray:
    return features.clip_descriptors(wave, AudioSettings(), descriptor_set="ser+voice")


def test_one_clips_descriptors_overlap_the_encoder_and_work_in_a_forked_child(encoder):
    import multiprocessing

    wave = _speech(180.0, 2.0)
    both = _describe_both(wave)  # the encoder ran on its thread: a forked child has no such thread
    alone = np.concatenate([features.clip_descriptors(wave, AudioSettings(), descriptor_set=part)
                            for part in ("ser", "voice")])
    np.testing.assert_allclose(both, alone, rtol=1e-5, atol=1e-6)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_describe_both, (wave,)).get(timeout=60)  # never waits on the parent's thread
    np.testing.assert_allclose(child, both, rtol=1e-5, atol=1e-6)


def _stream_both_ways(model_path, clips, monkeypatch) -> None:
    """A stream's windows give the same probabilities with the network beside the descriptors as after them."""
    from ser_lib.inference import Predictor

    stream = np.concatenate([sf.read(clip, dtype="float32")[0] for clip in clips])
    overlapped, sequential = (Predictor.from_checkpoint(model_path, device="cpu") for _ in range(2))
    assert overlapped._overlaps()
    monkeypatch.setattr(sequential, "_overlaps", lambda: False)
    for start in range(0, len(stream) - 3 * SR, SR // 2):
        window = stream[start:start + 3 * SR]
        np.testing.assert_allclose(overlapped.window_probs(window, SR, window[-SR // 2:]),
                                   sequential.window_probs(window, SR, window[-SR // 2:]), rtol=1e-4, atol=1e-5)
    assert overlapped.speaker.descriptors.count == sequential.speaker.descriptors.count > 1
    assert overlapped.speaker.mel.count == sequential.speaker.mel.count > 1
    heard = overlapped.speaker.mel.count

    def broken(x):
        raise RuntimeError("descriptors failed")

    monkeypatch.setattr(overlapped, "describe", broken)
    with pytest.raises(RuntimeError, match="descriptors failed"):
        overlapped.window_probs(window, SR, window[-SR // 2:])
    assert overlapped.speaker.mel.count == heard  # a window that failed is not heard, as without the thread


def test_a_checkpoint_names_its_encoder_weights_streams_and_refuses_others(encoder, corpus8, tmp_path, monkeypatch):
    from conftest import small_train_config

    from ser_lib import training
    from ser_lib.inference import Predictor
    from ser_lib.model import checkpoint as ckpt_io

    out = tmp_path / "run"
    training.train(small_train_config(corpus8, out, epochs=1, descriptor_set="ser+voice"))
    loaded = ckpt_io.load(out / "best_model.pt")
    assert loaded.model.config.descriptor_dim == len(features.descriptor_names("ser+voice"))
    assert ckpt_io.read(out / "best_model.pt")["normalizer"]["voice_version"] == voice.version()
    clip = sorted((corpus8 / "Actor_08").glob("*.wav"))[0]
    prediction = Predictor.from_checkpoint(out / "best_model.pt", device="cpu").predict_file(clip)
    assert prediction.probs.shape == (4,) and abs(prediction.probs.sum() - 1) < 1e-5
    _stream_both_ways(out / "best_model.pt", sorted((corpus8 / "Actor_08").glob("*.wav"))[:4], monkeypatch)
    other = tmp_path / "other.pt"
    _save_encoder(other, 1)
    monkeypatch.setenv(voice.ENV, str(other))
    with pytest.raises(CheckpointError, match="voice descriptors come from the encoder ge2e-lstm-.*pip install"):
        ckpt_io.load(out / "best_model.pt")
    monkeypatch.delenv(voice.ENV)  # a machine without the weights
    monkeypatch.setattr(voice.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match="descriptor set ser\\+voice.*cannot be used here.*pip install --no-deps"):
        Predictor.from_checkpoint(out / "best_model.pt", device="cpu")


def test_the_voice_baseline_features_are_cached_per_weights(encoder, tmp_path, monkeypatch):
    import pandas as pd

    from ser_lib.training import baseline

    rows = []
    for k, f0 in enumerate((120.0, 240.0)):
        silence = np.zeros(SR // 2, np.float32)  # leading and trailing silence, trimmed before the encoder
        path = tmp_path / f"clip{k}.wav"
        sf.write(str(path), np.concatenate([silence, 0.2 * _speech(f0), silence]), SR)
        rows.append({"path": str(path), "speaker": "folder:a", "emotion": "neutral"})
    clips = pd.DataFrame(rows)
    table = baseline.feature_table(clips, feature_set="voice")
    assert list(table.columns) == list(voice.names()) and len(table) == 2
    row, speech = table.iloc[0].to_numpy(), 0.2 * _speech(120.0)
    untrimmed = voice.statistics(np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR // 2, np.float32)]),
                                 SR)
    # the silence is trimmed (up to a 0.1 s margin) before the encoder hears the clip
    assert np.abs(row - voice.statistics(speech, SR)).mean() < 0.5 * np.abs(row - untrimmed).mean()
    monkeypatch.setattr(baseline, "_clip_voice", lambda path: 1 / 0)  # a second call reads the cache
    np.testing.assert_allclose(baseline.feature_table(clips, feature_set="voice").to_numpy(), table.to_numpy())
    monkeypatch.undo()
    other = tmp_path / "other.pt"
    _save_encoder(other, 1)
    monkeypatch.setenv(voice.ENV, str(other))
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    again = baseline.feature_table(clips, feature_set="voice", workers=1)  # other weights: computed anew
    assert np.abs(again.to_numpy() - table.to_numpy()).max() > 1e-3


def _wheel(weights: bytes) -> bytes:
    """A wheel laid out as resemblyzer's: the weights beside the package's metadata."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(voice.MEMBER, weights)
        wheel.writestr("Resemblyzer-0.1.4.dist-info/METADATA", "Name: Resemblyzer\n")
    return buffer.getvalue()


@pytest.fixture
def served_wheel(tmp_path, monkeypatch):
    """No installed package: the weights come from a wheel served on 127.0.0.1 (its MD5 and the weights' SHA-256
    are the expected ones); yields the server and the weights' bytes."""
    monkeypatch.delenv(voice.ENV, raising=False)
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(voice.importlib.util, "find_spec", lambda name: None)
    _save_encoder(tmp_path / "original.pt", 0)
    weights = (tmp_path / "original.pt").read_bytes()
    server = ArchiveServer(_wheel(weights))
    monkeypatch.setattr(voice, "WHEEL", replace(voice.WHEEL, url=server.url, size=None,
                                                md5=hashlib.md5(server.payload).hexdigest()))
    monkeypatch.setattr(voice, "WEIGHTS_SHA256", hashlib.sha256(weights).hexdigest())
    yield server, weights
    server.close()


def test_without_the_package_the_first_use_downloads_the_wheel_once_and_keeps_the_weights(served_wheel, tmp_path,
                                                                                          monkeypatch):
    server, weights = served_wheel
    assert not voice.available()
    done = run_cli("download", "--voice_encoder")
    path = tmp_path / "cache" / "voice-encoder" / "pretrained.pt"
    assert done.returncode == 0 and str(path) in done.stdout and path.read_bytes() == weights
    assert "fetching the pretrained voice encoder's weights" in done.stderr
    assert voice.available() and voice.weights_path() == path and len(server.requests) == 1  # once
    assert not (path.parent / ".download").exists()  # the wheel is not kept, only the weights
    monkeypatch.setenv(voice.ENV, str(tmp_path / "original.pt"))
    expected = voice.statistics(_speech(150.0), SR)
    monkeypatch.delenv(voice.ENV)
    np.testing.assert_array_equal(voice.statistics(_speech(150.0), SR), expected)
    refused = run_cli("download", "--voice_encoder", "--md5", "0" * 32)
    assert refused.returncode == 2 and "are for the RAVDESS archive" in refused.stderr + refused.stdout
    path.write_bytes(weights[:1000])  # a damaged copy: loading it says what to do
    with pytest.raises(ConfigError, match="does not hold the voice encoder's weights .*delete it: the next use "
                                          "downloads it again"):
        voice.check()


def test_two_processes_asking_at_once_download_once(served_wheel):
    server, weights = served_wheel
    with ThreadPoolExecutor(2) as pool:  # separate opens of the lock file exclude each other, threads too
        found = list(pool.map(lambda _: voice.weights_path(), range(2)))
    assert found[0] == found[1] and found[0].read_bytes() == weights and len(server.requests) == 1


def test_a_wrong_or_broken_wheel_leaves_nothing_under_the_weights_name(served_wheel, tmp_path, monkeypatch):
    server, weights = served_wheel
    path = tmp_path / "cache" / "voice-encoder" / "pretrained.pt"
    monkeypatch.setattr(voice, "WHEEL", replace(voice.WHEEL, md5="0" * 32))
    with pytest.raises(ConfigError, match="could not be downloaded: The downloaded .* has MD5 .*, but 0{32} was "
                                          "expected: .*Ways out: run again"):
        voice.weights_path()
    assert not path.exists() and list((path.parent / ".download").glob("*.rejected"))  # kept aside
    server.payload = _wheel(weights[:-1] + b"x")  # a whole wheel, other weights
    monkeypatch.setattr(voice, "WHEEL", replace(voice.WHEEL, md5=hashlib.md5(server.payload).hexdigest()))
    with pytest.raises(ConfigError, match="pretrained.pt in .* has SHA-256 .*, but .* was expected"):
        voice.weights_path()
    assert not path.exists() and not (path.parent / ".download" / voice.WHEEL.filename).exists()
    server.payload = _wheel(weights)[:-30]  # not a whole zip
    monkeypatch.setattr(voice, "WHEEL", replace(voice.WHEEL, md5=hashlib.md5(server.payload).hexdigest()))
    with pytest.raises(ConfigError, match="not a valid zip archive"):
        voice.weights_path()
    assert not path.exists()


@pytest.mark.skipif(voice.importlib.util.find_spec("resemblyzer") is None,
                    reason="resemblyzer, whose wheel holds the real weights, is not installed (make install adds it)")
def test_the_real_encoder_is_found_in_its_wheel_and_describes_speech(monkeypatch):
    monkeypatch.delenv(voice.ENV, raising=False)
    assert voice.weights_path().name == "pretrained.pt" and voice.available()
    assert voice.version().startswith("ge2e-lstm-")
    low, high = (voice.statistics(0.2 * _speech(f0), SR) for f0 in (110.0, 260.0))
    assert np.isfinite(low).all() and (low[256:512] > 0).all()  # the first layer's units all vary
    assert np.abs(low - high).max() > 1e-2
