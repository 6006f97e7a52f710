"""ONNX export (``python -m ser_lib export``) and the onnxruntime predictor."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ser_lib.data import audio
from ser_lib.data.audio import AudioSettings
from ser_lib.errors import CheckpointError, ConfigError, ExportError
from ser_lib.inference import Predictor, StreamingPredictor, StreamSettings
from ser_lib.model import SERModel, export
from ser_lib.model import checkpoint as ckpt_io
from ser_lib.model.normalizer import InputNormalizer
from ser_lib.training import TrainConfig
from conftest import run_cli


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory) -> Path:
    """The small trained spectrogram model (speaker statistics, descriptors, gender head) exported by the CLI,
    in a process of its own (the exporter's chatter includes lines that bypass Python's streams)."""
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    run = subprocess.run([sys.executable, "-m", "ser_lib", "export", "--model_path", str(trained_run / "best_model.pt"),
                          "--format", "onnx", "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "largest probability difference" in run.stdout and "the same top emotion" in run.stdout
    assert "INFO" not in run.stderr and "Warning" not in run.stderr  # the exporter's chatter is hidden
    return out


def _clips(corpus8) -> list[np.ndarray]:
    """Real-length clips: 1 s, two whole clips (about 2.5-4 s), and 7 s of three clips end to end."""
    files = sorted((corpus8 / "Actor_08").glob("*.wav"))
    waves = [audio.load(f) for f in files[:5]]
    return [waves[0][8000:24000], waves[1], waves[2], np.concatenate(waves[2:5])[:7 * 16000]]


def test_onnx_model_agrees_with_pytorch_on_clips_of_several_lengths(trained_run, exported, corpus8):
    torch_model = Predictor.from_checkpoint(trained_run / "best_model.pt", device="cpu")
    onnx_model = Predictor.from_onnx(exported)
    assert onnx_model.labels == torch_model.labels == ["neutral", "happy", "sad", "angry"]
    assert onnx_model.audio == torch_model.audio
    lengths = set()
    for wave in _clips(corpus8):
        lengths.add(len(onnx_model.prepare(wave, 16000)))
        a, b = onnx_model.predict(wave, 16000), torch_model.predict(wave, 16000)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
        assert a.label == b.label
    assert len(lengths) >= 3  # the graph takes any length


def test_onnx_model_streams_and_adapts_like_pytorch(trained_run, exported, corpus8):
    wave = np.concatenate(_clips(corpus8)[1:3])
    results = []
    for predictor in (Predictor.from_onnx(exported), Predictor.from_checkpoint(trained_run / "best_model.pt", "cpu")):
        stream = StreamingPredictor(predictor, 16000, StreamSettings(vad="energy"))  # speaker statistics build up
        results.append([r for r in stream.process([wave]) if r.speech])
    a, b = results
    assert len(a) == len(b) >= 4
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(ra.probs, rb.probs, atol=1e-4)


def test_onnx_file_carries_labels_settings_and_statistics(trained_run, exported):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    loaded = ckpt_io.load(trained_run / "best_model.pt")
    assert meta["format"] == export.ONNX_FORMAT and json.loads(meta["labels"]) == loaded.labels
    assert json.loads(meta["normalizer"]) == json.loads(json.dumps(loaded.normalizer.to_dict()))
    assert json.loads(meta["inputs"]) == ["wave", "mel_mean", "mel_std", "descriptors"]
    assert json.loads(meta["outputs"]) == ["emotion_logits", "gender_logits", "attention"]


def test_cli_infer_runs_an_onnx_model(trained_run, exported, corpus8):
    clip = str(sorted((corpus8 / "Actor_08").glob("*.wav"))[3])
    a = run_cli("infer", "--model_path", str(exported), "--input", clip, "--whole")
    b = run_cli("infer", "--model_path", str(trained_run / "best_model.pt"), "--input", clip, "--whole")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout  # same label, same probabilities to three decimals
    bad = run_cli("infer", "--model_path", str(exported), "--input", clip, "--optimize", "int8")
    assert bad.returncode == 2 and "export --quantize int8" in bad.stderr


def test_wav2vec2_model_exports_and_agrees(tiny_backbone, tmp_path):
    torch.manual_seed(0)
    train_config = TrainConfig(backbone=str(tiny_backbone), d_model=32, cnn_channels=(8, 16, 32), descriptor_set="ser")
    config = train_config.model_config(4)
    model = SERModel(config).eval()
    normalizer = InputNormalizer.untrained(config.mel, AudioSettings(), descriptors=bool(config.descriptor_dim),
                                           descriptor_set=train_config.descriptor_set)
    path = ckpt_io.save(ckpt_io.payload(model, labels=["neutral", "happy", "sad", "angry"], audio=AudioSettings(),
                                        normalizer=normalizer, split={}, train_config={}, metrics={}),
                        tmp_path / "w2v2.pt")
    summary = export.export_onnx(path, tmp_path / "w2v2.onnx")
    assert summary["check"]["max_prob_diff"] < 1e-4
    torch_model, onnx_model = Predictor.from_checkpoint(path, "cpu"), Predictor.from_onnx(tmp_path / "w2v2.onnx")
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in (1.3, 2.0, 4.7)]
    for wave in waves:
        np.testing.assert_allclose(onnx_model.predict(wave, 16000).probs, torch_model.predict(wave, 16000).probs,
                                   atol=1e-4)
    # int8: the encoder's matrix multiplications only, as `infer --optimize int8` does in PyTorch
    import onnx

    # from the float32 file: no second trace (tracing the encoder takes most of an export's time)
    int8 = export.export_onnx(tmp_path / "w2v2.onnx", tmp_path / "int8.onnx", quantize="int8")
    assert int8["check"]["reference"] == "the float32 ONNX graph" and int8["check"]["same_top_emotion"]
    with pytest.raises(ConfigError, match="quantised already"):
        export.export_onnx(tmp_path / "int8.onnx", tmp_path / "int8-again.onnx", quantize="int8")
    quantized = onnx.load(str(tmp_path / "int8.onnx"))
    assert sum(node.op_type == "MatMulInteger" for node in quantized.graph.node) >= 12  # 2 layers x 6 + projection
    assert {p.key: p.value for p in quantized.metadata_props}["quantize"] == "int8"
    fast = Predictor.from_onnx(tmp_path / "int8.onnx")
    for wave in waves:
        np.testing.assert_allclose(fast.predict(wave, 16000).probs, onnx_model.predict(wave, 16000).probs, atol=0.02)


def test_mean_pooling_model_without_context_exports_and_agrees(tmp_path):
    """The baseline ladder's CNN rung (no context transformer, mean of the frames) exports too."""
    torch.manual_seed(0)
    config = TrainConfig(d_model=32, cnn_channels=(8, 16, 32), context_layers=0, pooling="mean",
                         descriptors=False, speaker_norm=False).model_config(4)
    model = SERModel(config).eval()
    normalizer = InputNormalizer.untrained(config.mel, AudioSettings(), descriptors=False)
    path = ckpt_io.save(ckpt_io.payload(model, labels=["neutral", "happy", "sad", "angry"], audio=AudioSettings(),
                                        normalizer=normalizer, split={}, train_config={}, metrics={}),
                        tmp_path / "cnn.pt")
    export.export_onnx(path, tmp_path / "cnn.onnx")
    torch_model, onnx_model = Predictor.from_checkpoint(path, "cpu"), Predictor.from_onnx(tmp_path / "cnn.onnx")
    rng = np.random.default_rng(1)
    for seconds in (1.1, 3.6):
        wave = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        np.testing.assert_allclose(onnx_model.predict(wave, 16000).probs, torch_model.predict(wave, 16000).probs,
                                   atol=1e-4)


def test_export_refuses_bad_input_and_writes_nothing_half(trained_run, exported, tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="does not exist"):
        export.export_onnx(tmp_path / "missing.pt", tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match=".onnx file"):
        export.export_onnx(trained_run / "best_model.pt", tmp_path / "m.bin")
    with pytest.raises(ConfigError, match="unknown quantisation"):
        export.export_onnx(trained_run / "best_model.pt", tmp_path / "m.onnx", quantize="int4")
    with pytest.raises(ConfigError, match="no encoder"):
        export.export_onnx(trained_run / "best_model.pt", tmp_path / "m.onnx", quantize="int8")
    with pytest.raises(ConfigError, match="no encoder"):  # the same from its ONNX export
        export.export_onnx(exported, tmp_path / "m.onnx", quantize="int8")
    with pytest.raises(ConfigError, match="ONNX model already"):
        export.export_onnx(exported, tmp_path / "m.onnx")
    (tmp_path / "foreign.onnx").write_bytes(b"not a graph")
    with pytest.raises(ConfigError, match="not an ONNX model"):
        export.export_onnx(tmp_path / "foreign.onnx", tmp_path / "m.onnx", quantize="int8")
    assert not (tmp_path / "m.onnx").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("Failed to export the model with torch.export.\n\n## Exception summary\n\n"
                           "<class 'GuardOnDataDependentSymNode'>: data-dependent expression")

    target = tmp_path / "out" / "m.onnx"
    # an export whose graph disagrees with PyTorch is refused, and nothing is left behind
    monkeypatch.setattr(export, "compare", lambda *a, **k: {"max_prob_diff": 0.2, "same_top_emotion": False,
                                                           "seconds": [1.0]})
    with pytest.raises(ExportError, match="disagrees with PyTorch.*nothing was written"):
        export.export_onnx(trained_run / "best_model.pt", target)
    assert not target.exists() and list(target.parent.iterdir()) == []
    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match="GuardOnDataDependentSymNode.*serve it with PyTorch"):
        export.export_onnx(trained_run / "best_model.pt", target)
    assert not target.exists() and list(target.parent.iterdir()) == []  # no file, no temporary folder


def test_from_onnx_refuses_foreign_and_damaged_files(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="not one exported by ser_lib"):
        Predictor.from_onnx(tmp_path / "foreign.onnx")
    with pytest.raises(ConfigError, match="not exported by ser_lib"):  # nor quantised: nothing says what it is
        export.export_onnx(tmp_path / "foreign.onnx", tmp_path / "int8.onnx", quantize="int8")
    model = helper.make_model(graph)  # ser_lib's metadata on a graph that does not match it
    for key, value in {"format": export.ONNX_FORMAT, "format_version": "1", "inputs": '["wave"]'}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "mismatch.onnx"))
    with pytest.raises(CheckpointError, match="is damaged: its graph takes"):
        Predictor.from_onnx(tmp_path / "mismatch.onnx")
    (tmp_path / "damaged.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        Predictor.from_onnx(tmp_path / "damaged.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        Predictor.from_onnx(tmp_path / "missing.onnx")
