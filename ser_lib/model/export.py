"""ONNX export: a trained model's network as one graph for onnxruntime (or any ONNX runtime).

The graph holds the whole network: the log-mel front end, the CNN and/or the pretrained encoder, the
context transformer, attention pooling, the descriptor branch and both heads. Its inputs are

* ``wave`` ``(batch, samples)``: audio at the model's sample rate, already prepared (resampled,
  trimmed, cropped: :meth:`~ser_lib.inference.Predictor.prepare`), any length;
* ``mel_mean``, ``mel_std`` ``(batch, n_mels)``: the log-mel statistics (the training data's, or the
  speaker's), when the model has the spectrogram branch;
* ``descriptors`` ``(batch, descriptor_dim)``: the normalised clip descriptors, when it takes them;

and its outputs ``emotion_logits`` ``(batch, emotions)``, ``gender_logits`` ``(batch, 2)`` (with the
gender head) and ``attention`` ``(batch, pooling heads, frames)``. The clip descriptors and speaker
statistics are computed in Python by the model's normaliser (ser_lib, with NumPy, PyTorch's
log-mel for the speaker statistics and, for the default descriptors, the voice encoder's LSTM), whose
statistics travel in the file's metadata with the label names, the audio settings and the model configuration, so
:meth:`Predictor.from_onnx <ser_lib.inference.Predictor.from_onnx>` needs nothing else.

``quantize="int8"``: onnxruntime's dynamic quantisation of the pretrained encoder's matrix
multiplications (int8 weights, activations quantised on the fly; the small layers on top stay in
float32), the ONNX counterpart of ``infer --optimize int8``; :func:`quantize_onnx` makes the int8 copy of
a float32 export without exporting again.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ExportError
from . import checkpoint as ckpt_io
from .ser_model import ModelConfig

log = logging.getLogger(__name__)

ONNX_FORMAT = "ser-course-onnx"
ONNX_FORMAT_VERSION = 1
OPSET = 18
QUANTIZE = ("none", "int8")
#: Largest probability difference to PyTorch a float32 export may show in its check.
CHECK_TOLERANCE = 1e-3
OUTPUTS = ("emotion_logits", "gender_logits", "attention")
NO_ENCODER = ("int8 quantisation is for the pretrained encoder's linear layers, and this model has no encoder "
              "(a spectrogram model is small and fast already)")


def input_names(config: ModelConfig) -> list[str]:
    """The graph's inputs for a model of this configuration, in order."""
    names = ["wave"]
    if config.spectrogram:
        names += ["mel_mean", "mel_std"]
    if config.descriptor_dim:
        names.append("descriptors")
    return names


def output_names(config: ModelConfig) -> list[str]:
    return [name for name in OUTPUTS if name != "gender_logits" or config.gender_head]


class _Graph(nn.Module):
    """The model with positional inputs and plain tensor outputs, as the exporter wants them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, wave: torch.Tensor, mel_mean: torch.Tensor | None = None, mel_std: torch.Tensor | None = None,
                descriptors: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.model(wave, mel_mean=mel_mean, mel_std=mel_std, descriptors=descriptors)
        return tuple(t for t in (out.emotion_logits, out.gender_logits, out.attention) if t is not None)


def example_inputs(config: ModelConfig, seconds: float = 3.0, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the right shapes (a noisy tone and plausible statistics), for tracing and checks."""
    rng = np.random.default_rng(seed)
    sr = config.mel.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    tone = np.sin(2 * np.pi * 180 * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)))
    wave = 0.1 * tone + 0.01 * rng.standard_normal(len(t))
    inputs = {"wave": np.tile(wave.astype(np.float32), (batch, 1))}
    if config.spectrogram:
        inputs["mel_mean"] = rng.normal(-5, 1, (batch, config.mel.n_mels)).astype(np.float32)
        inputs["mel_std"] = rng.uniform(1, 3, (batch, config.mel.n_mels)).astype(np.float32)
    if config.descriptor_dim:
        inputs["descriptors"] = rng.normal(0, 1, (batch, config.descriptor_dim)).astype(np.float32)
    return inputs


def metadata(loaded: ckpt_io.Checkpoint) -> dict[str, str]:
    """What the ONNX file carries besides the graph (all JSON strings)."""
    config = loaded.model.config
    return {
        "format": ONNX_FORMAT,
        "format_version": str(ONNX_FORMAT_VERSION),
        "labels": json.dumps(list(loaded.labels)),
        "audio": json.dumps(asdict(loaded.audio)),
        "model_config": json.dumps(config.to_dict()),
        "normalizer": json.dumps(loaded.normalizer.to_dict()),
        "inputs": json.dumps(input_names(config)),
        "outputs": json.dumps(output_names(config)),
    }


@contextlib.contextmanager
def _quiet_exporter(root: bool = False):
    """The exporter's and graph optimiser's progress logs and warnings, hidden unless debugging
    (``root``: also the root logger's, which onnxruntime's quantiser logs to)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    names = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._export",
             "torch.fx.experimental.symbolic_shapes") + (("",) if root else ())
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(model_path: str | Path, output: str | Path, quantize: str = "none", opset: int = OPSET,
                check: bool = True) -> dict:
    """Export the checkpoint at ``model_path`` to ``output`` (written whole or not at all).

    Returns a summary: the output path, its size, and (``check``) the largest difference in
    probabilities between onnxruntime and PyTorch on example inputs of 1, 3 and 7 s (batches of 1, 3
    and 1); a float32 export that differs by more than :data:`CHECK_TOLERANCE`, or in a top emotion,
    is refused. An int8 export is reported, not refused: quantisation moves probabilities. A float32
    ``.onnx`` export as ``model_path`` with ``quantize="int8"`` is quantised as it is (:func:`quantize_onnx`).
    """
    output = _checked_arguments(output, quantize)
    if Path(model_path).suffix == ".onnx":
        if quantize != "int8":
            raise ConfigError(f"{model_path} is an ONNX model already: pass a best_model.pt to export, or "
                              f"--quantize int8 for an int8 copy of it")
        return quantize_onnx(model_path, output, check=check)
    import onnx

    loaded = ckpt_io.load(model_path, "cpu")
    if quantize == "int8" and not loaded.model.config.has_backbone:
        raise ConfigError(f"{NO_ENCODER}: export without --quantize")
    graph = _Graph(loaded.model.float().eval()).eval()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as tmp:
        raw = _trace(graph, Path(tmp) / "model.onnx", opset, model_path)
        try:
            proto = onnx.load(str(raw))
            del proto.metadata_props[:]
            for key, value in metadata(loaded).items():
                proto.metadata_props.add(key=key, value=value)
            proto.doc_string = f"ser-course speech emotion model: {', '.join(loaded.labels)}"
            onnx.save(proto, str(raw))
            if quantize == "int8":
                raw = _quantize_int8(raw, Path(tmp) / "model.int8.onnx", proto)
            config = graph.model.config
            summary = {"output": str(output), "quantize": quantize, "inputs": input_names(config),
                       "outputs": output_names(config), "labels": list(loaded.labels)}
            if check:
                summary["check"] = {**compare(graph, raw, config), "reference": "PyTorch"}
        except ExportError:
            raise
        except Exception as err:  # onnx, the quantiser or onnxruntime refused the graph
            log.debug("ONNX export failed after tracing", exc_info=True)
            raise ExportError(f"{model_path}: the exported graph could not be {'quantised or ' * (quantize != 'none')}"
                              f"run by onnxruntime ({_reason(err)}); try the default --opset {OPSET}") from None
        if check and quantize == "none" and (summary["check"]["max_prob_diff"] > CHECK_TOLERANCE
                                             or not summary["check"]["same_top_emotion"]):
            raise ExportError(f"{model_path}: the exported graph disagrees with PyTorch (largest probability "
                              f"difference {summary['check']['max_prob_diff']:.2g}, more than {CHECK_TOLERANCE:g}); "
                              f"nothing was written")
        os.replace(raw, output)
    summary["bytes"] = output.stat().st_size
    return summary


def _checked_arguments(output: str | Path, quantize: str) -> Path:
    """The output path, once the exporter's packages, the quantisation and the file name are fine."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as err:
        raise ConfigError(f"ONNX export needs the onnx and onnxscript packages ({err}): pip install onnx onnxscript") \
            from None
    if quantize not in QUANTIZE:
        raise ConfigError(f"unknown quantisation {quantize!r}; use one of {', '.join(QUANTIZE)}")
    output = Path(output)
    if output.suffix != ".onnx":
        raise ConfigError(f"the output should be a .onnx file, got {output}")
    return output


def quantize_onnx(source: str | Path, output: str | Path, check: bool = True) -> dict:
    """An int8 copy of a float32 ONNX export (:func:`export_onnx`), without tracing the model again
    (tracing a pretrained encoder takes most of an export's time). The summary is
    :func:`export_onnx`'s, its ``check`` taken against the float32 graph."""
    import onnx

    source, output = Path(source), _checked_arguments(output, "int8")
    if not source.is_file():
        raise ConfigError(f"{source} does not exist")
    try:
        proto = onnx.load(str(source))
    except Exception as err:
        raise ConfigError(f"{source} is not an ONNX model ({_reason(err)})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("format") != ONNX_FORMAT or "model_config" not in meta:
        raise ConfigError(f"{source} was not exported by ser_lib (`python -m ser_lib export`): nothing to go on")
    if meta.get("quantize", "none") != "none":
        raise ConfigError(f"{source} is quantised already ({meta['quantize']})")
    config = ModelConfig.from_dict(json.loads(meta["model_config"]))
    if not config.has_backbone:
        raise ConfigError(NO_ENCODER)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as tmp:
        try:
            raw = _quantize_int8(source, Path(tmp) / "model.int8.onnx", proto)
            summary = {"output": str(output), "quantize": "int8", "inputs": input_names(config),
                       "outputs": output_names(config), "labels": json.loads(meta["labels"])}
            if check:
                summary["check"] = {**compare(source, raw, config), "reference": "the float32 ONNX graph"}
        except ExportError:
            raise
        except Exception as err:
            log.debug("ONNX quantisation failed", exc_info=True)
            raise ExportError(f"{source}: the graph could not be quantised or run by onnxruntime "
                              f"({_reason(err)})") from None
        os.replace(raw, output)
    summary["bytes"] = output.stat().st_size
    return summary


def _trace(graph: _Graph, raw: Path, opset: int, model_path) -> Path:
    """The dynamo exporter's ONNX graph of ``graph`` at ``raw``, dynamic in batch and length."""
    config = graph.model.config
    names = input_names(config)
    example = example_inputs(config, batch=2)  # a batch of 2, so the batch axis stays dynamic too
    auto = torch.export.Dim.AUTO  # dynamic where the graph allows it; the check tries other shapes
    shapes = {"wave": {0: auto, 1: auto}, **{name: {0: auto} for name in names[1:]}}
    try:
        with _quiet_exporter():
            torch.onnx.export(graph, (), str(raw), kwargs={n: torch.from_numpy(example[n]) for n in names},
                              dynamo=True, input_names=names, output_names=output_names(config),
                              dynamic_shapes={n: shapes[n] for n in names}, opset_version=opset,
                              external_data=False, verbose=False)
    except Exception as err:  # the exporter's errors are long; the first line says what failed
        log.debug("ONNX export failed", exc_info=True)
        raise ExportError(f"{model_path}: this model could not be exported to ONNX ({_reason(err)}). Models with a "
                          f"pretrained encoder export when the encoder traces with torch.export; else "
                          f"serve it with PyTorch (`infer --model_path best_model.pt`)") from None
    return raw


def _reason(err: Exception) -> str:
    """The line of an exporter error that says what failed (its summary, when it has one)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        after = lines[lines.index("## Exception summary") + 1:]
        if after:
            return after[0]
    return lines[0] if lines else type(err).__name__


def _quantize_int8(source: Path, target: Path, proto) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    encoder = [node.name for node in proto.graph.node if node.op_type in ("MatMul", "Gemm")
               and any(p.key == "namespace" and "model.backbone.encoder" in p.value for p in node.metadata_props)]
    if not encoder:
        raise ExportError("found no matrix multiplications of the pretrained encoder to quantise in the graph")
    with _quiet_exporter(root=True):
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, nodes_to_quantize=encoder,
                         op_types_to_quantize=["MatMul", "Gemm"])
    quantized = onnx.load(str(target))
    del quantized.metadata_props[:]
    for prop in proto.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key="quantize", value="int8")
    onnx.save(quantized, str(target))
    return target


def compare(reference: nn.Module | Path, path: Path, config: ModelConfig,
            seconds: tuple[float, ...] = (1.0, 3.0, 7.0)) -> dict:
    """onnxruntime on the graph at ``path`` against ``reference`` (the PyTorch graph, or another ONNX
    file) on example inputs of several lengths: the largest probability difference and whether the
    top emotion is the same."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = input_names(config)
    if [i.name for i in session.get_inputs()] != names:
        raise ExportError(f"the exported graph takes {[i.name for i in session.get_inputs()]}, not {names}")
    if not isinstance(reference, nn.Module):
        reference_session = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    largest, same = 0.0, True
    for k, length in enumerate(seconds):
        inputs = example_inputs(config, length, batch=3 if k == 1 else 1, seed=k)
        if isinstance(reference, nn.Module):
            with torch.inference_mode():
                expected = reference(**{n: torch.from_numpy(inputs[n]) for n in names})[0].numpy()
        else:
            expected = reference_session.run(["emotion_logits"], inputs)[0]
        reference_probs = torch.softmax(torch.from_numpy(expected), -1).numpy()
        logits = session.run(["emotion_logits"], inputs)[0]
        probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
        largest = max(largest, float(np.abs(probs - reference_probs).max()))
        same = same and bool(np.all(probs.argmax(-1) == reference_probs.argmax(-1)))
    return {"max_prob_diff": largest, "same_top_emotion": same, "seconds": list(seconds)}
