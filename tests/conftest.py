"""Shared fixtures: a small synthetic corpus (never the network) and the shared real data."""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import subprocess
import sys
import threading
import traceback
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_lib.data import download, synth

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"
SHARED_CREMAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "cremad16k"


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A 4-actor synthetic corpus (240 clips, 2 male and 2 female actors)."""
    root = tmp_path_factory.mktemp("synthetic4")
    synth.generate(root, actors=4, seed=0, progress=False)
    return root


@pytest.fixture
def shared_data() -> Path:
    """The development copy of RAVDESS (actors 01-20); skips when this checkout has none beside it."""
    if not (SHARED_DATA / "Actor_01").is_dir():
        pytest.skip(f"real RAVDESS recordings not found at {SHARED_DATA} (only present on development machines)")
    return SHARED_DATA


@pytest.fixture
def shared_cremad() -> Path:
    """The development copy of CREMA-D (30 speakers); skips when this checkout has none beside it."""
    if not (SHARED_CREMAD / "AudioWAV").is_dir():
        pytest.skip(f"real CREMA-D recordings not found at {SHARED_CREMAD} (only present on development machines)")
    return SHARED_CREMAD


def run_cli(*args) -> subprocess.CompletedProcess:
    """``python -m ser_lib ARGS`` run in this process (no second interpreter to start and no second torch
    to import), with what a separate process would show: its exit status, and its standard output and
    error with log lines, warnings and the traceback of an uncaught exception. Tests of a real process
    (a signal, the environment, the ``python -m`` entry point) use ``subprocess`` instead."""
    from ser_lib.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)  # main()'s logging.basicConfig then leaves the handlers as they are
    root.setLevel(logging.DEBUG if "-v" in args or "--verbose" in args else logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # the interpreter's own filters, not the test run's
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category, append=True)
            warnings.showwarning = _show_warning  # where it happens, among the other lines
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:  # argparse: --help and usage errors
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if isinstance(exit_.code, str):
                    print(exit_.code, file=err)
            except Exception:  # noqa: BLE001 - what the interpreter would print
                traceback.print_exc(file=err)
                code = 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess([sys.executable, "-m", "ser_lib", *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def write_tone(path: Path, sr: int = 16000, seconds: float = 0.5, channels: int = 1,
               freq: float = 440.0, subtype: str = "PCM_16") -> np.ndarray:
    """Write a sine tone (the same in every channel) and return the mono signal."""
    t = np.arange(int(sr * seconds)) / sr
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return mono


def descriptors_match_clip_by_clip(waves: list[np.ndarray], folder: Path, descriptor_set: str,
                                   rtol: float) -> tuple[np.ndarray, list[Path]]:
    """Write ``waves`` (16 kHz) to ``folder``, take their descriptor matrix as training does (cached, by
    file), check each row against the descriptors of its clip alone; the matrix and the files."""
    from ser_lib.data import features
    from ser_lib.data.audio import AudioSettings

    paths = []
    for k, wave in enumerate(waves):
        paths.append(folder / f"c{k}.wav")
        sf.write(str(paths[-1]), wave, 16000, subtype="FLOAT")
    settings = AudioSettings()
    matrix = features.descriptor_matrix(paths, waves, settings, workers=1, descriptor_set=descriptor_set)
    assert matrix.shape == (len(waves), len(features.descriptor_names(descriptor_set)))
    for row, wave in zip(matrix, waves):
        np.testing.assert_allclose(row, features.clip_descriptors(wave, settings, descriptor_set=descriptor_set),
                                   rtol=rtol, atol=1e-5)
    return matrix, paths


def save_tiny_wav2vec2(folder: Path, feat_extract_norm: str = "group") -> Path:
    """A randomly initialised Wav2Vec2 of about 200k parameters, saved with ``save_pretrained``."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        conv_dim=(64,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm=feat_extract_norm, do_stable_layer_norm=feat_extract_norm == "layer",
        layerdrop=0.0, mask_time_prob=0.0,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """Folder of a tiny wav2vec2-base-like encoder (group-normalised feature encoder)."""
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("tiny-w2v2-group"), "group")


@pytest.fixture(scope="session")
def tiny_backbone_layer_norm(tmp_path_factory) -> Path:
    """Folder of a tiny wav2vec2-large-like encoder (layer-normalised feature encoder)."""
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("tiny-w2v2-layer"), "layer")


@pytest.fixture(scope="session")
def corpus8() -> Path:
    """An 8-actor synthetic corpus (480 clips) for training tests: the cached one notebook 07 also uses
    (tests only read it)."""
    return synth.default_corpus(actors=8, seed=0, progress=False)


@pytest.fixture
def interrupted(monkeypatch):
    """``interrupted(config, epoch)``: train until Ctrl-C (KeyboardInterrupt) as ``epoch`` (0-based) starts."""
    from ser_lib import training
    from ser_lib.training.loop import Trainer

    original = Trainer.train_epoch

    def run(config, epoch_to_stop: int) -> None:
        def train_epoch(self, loader, epoch, stop_message):
            if epoch == epoch_to_stop:
                raise KeyboardInterrupt
            return original(self, loader, epoch, stop_message)

        monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
        with pytest.raises(KeyboardInterrupt):
            training.train(config)
        monkeypatch.setattr(Trainer, "train_epoch", original)

    return run


def small_train_config(root: Path, out: Path, **changes):
    """A small, fast spectrogram-only configuration on actors 1-6 (train), 7 (val), 8 (test), with the
    project's descriptors alone (the voice encoder's statistics of every new clip would double the time of
    the training tests; test_voice and the notebooks train with them)."""
    from ser_lib.training import TrainConfig

    values = dict(dataset_root=str(root), output_dir=str(out), backbone="none", emotion_subset="basic4",
                  descriptor_set="ser",
                  epochs=6, batch_size=16, d_model=64, cnn_channels=(8, 16, 32), context_layers=1,
                  test_speakers=("8",), val_speakers=("7",), head_lr=3e-3, max_seconds=2.5, progress=False, seed=0)
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def trained_run(corpus8, tmp_path_factory) -> Path:
    """A small spectrogram-only basic4 model trained for 3 epochs on corpus8 (test actor 8)."""
    from ser_lib import training

    out = tmp_path_factory.mktemp("trained-run")
    training.train(small_train_config(corpus8, out, epochs=3))
    return out


@pytest.fixture(scope="session")
def second_run(corpus8, tmp_path_factory) -> Path:
    """Another model of ``trained_run``'s task (seed 1, 2 epochs): an ensemble's second member."""
    from ser_lib import training

    out = tmp_path_factory.mktemp("second-run")
    training.train(small_train_config(corpus8, out, epochs=2, seed=1))
    return out


class ArchiveServer:
    """Serves one payload at /archive.zip with HTTP Range support; can cut the first transfers short."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.cut_after: list[int] = []   # byte counts at which successive responses break off
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(server.payload):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = server.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after:
                    self.wfile.write(body[: server.cut_after.pop(0)])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"

    def resource(self, md5: str | None = None) -> download.Resource:
        return download.Resource(url=self.url, filename="Audio_Speech_Actors_01-24.zip",
                                 md5=md5 or hashlib.md5(self.payload).hexdigest())

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
