"""The model: encoder and log-mel branches, context, pooling, heads; its inputs; its checkpoints.

``ser_model`` (:class:`SERModel`, :class:`ModelConfig`) · ``backbone`` (pretrained encoders, the
encoder-output cache) · ``layers`` (spectrogram branch, pooling) · ``normalizer`` (the one input
normaliser: training and speaker statistics, clip descriptors) · ``checkpoint`` (self-describing
checkpoints).
"""
from .ser_model import ModelConfig, SERModel

__all__ = ["ModelConfig", "SERModel"]
