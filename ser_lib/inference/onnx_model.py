"""An exported ONNX model on onnxruntime, in the place of the PyTorch model.

:class:`OnnxModel` is called as :class:`~ser_lib.model.SERModel` is (a wave tensor and the
normaliser's inputs; an :class:`~ser_lib.model.ser_model.SEROutput` back), so
:class:`~ser_lib.inference.Predictor`, the stream and the live demo use it unchanged: the audio
preparation, clip descriptors and speaker statistics stay in Python, the network runs in onnxruntime.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.audio import AudioSettings
from ..errors import CheckpointError, ConfigError
from ..model import checkpoint as ckpt_io
from ..model.export import ONNX_FORMAT, ONNX_FORMAT_VERSION
from ..model.normalizer import InputNormalizer
from ..model.ser_model import ModelConfig, SEROutput


class OnnxModel:
    """An onnxruntime session with the interface of ``SERModel`` that ``Predictor`` uses."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's errors for a damaged or foreign file
            raise CheckpointError(f"{path} is not a readable ONNX model: {str(err).splitlines()[0]}") from None
        self.meta = self.session.get_modelmeta().custom_metadata_map
        if self.meta.get("format") != ONNX_FORMAT:
            raise CheckpointError(f"{path} is an ONNX model but not one exported by ser_lib "
                                  f"(`python -m ser_lib export --model_path best_model.pt --output {Path(path).name}`)")
        if int(self.meta.get("format_version", 0)) > ONNX_FORMAT_VERSION:
            raise CheckpointError(f"{path} was exported by a newer ser_lib (format {self.meta['format_version']})")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if self.inputs != json.loads(self.meta.get("inputs", "[]")) or "emotion_logits" not in self.outputs:
            raise CheckpointError(f"{path} is damaged: its graph takes {self.inputs} and gives {self.outputs}, "
                                  f"not what its metadata says; export it again")
        missing = [key for key in ("labels", "audio", "model_config", "normalizer") if key not in self.meta]
        if missing:
            raise CheckpointError(f"{path} is damaged: its metadata lacks {', '.join(missing)}; export it again")
        self.config = ModelConfig.from_dict(json.loads(self.meta["model_config"]))
        self.path = Path(path)

    def to(self, device) -> "OnnxModel":
        if torch.device(device).type != "cpu":
            raise ConfigError("an ONNX model runs on the CPU here (onnxruntime's CPU provider); use --device cpu")
        return self

    def eval(self) -> "OnnxModel":
        return self

    def __call__(self, wave: torch.Tensor, **extra: torch.Tensor) -> SEROutput:
        feeds = {"wave": wave.detach().cpu().float().numpy()}
        for name in self.inputs[1:]:
            if name not in extra or extra[name] is None:
                raise ConfigError(f"the ONNX model needs the input {name!r}")
            feeds[name] = extra[name].detach().cpu().float().numpy()
        out = dict(zip(self.outputs, self.session.run(self.outputs, feeds)))
        attention = torch.from_numpy(out["attention"])
        mask = torch.ones(attention.shape[0], attention.shape[-1], dtype=torch.bool)
        gender = torch.from_numpy(out["gender_logits"]) if "gender_logits" in out else None
        return SEROutput(torch.from_numpy(out["emotion_logits"]), gender, attention, mask)


def load_onnx(path: str | Path, threads: int | None = None) -> ckpt_io.Checkpoint:
    """An exported model with its labels, audio settings and normaliser, as a checkpoint is loaded."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist (write one with `python -m ser_lib export`)")
    model = OnnxModel(path, threads)
    audio = AudioSettings.from_dict(json.loads(model.meta["audio"]))
    normalizer = InputNormalizer.from_dict(json.loads(model.meta["normalizer"]), model.config.mel, audio)
    return ckpt_io.Checkpoint(model=model, labels=json.loads(model.meta["labels"]), audio=audio,
                              normalizer=normalizer, path=path)
