"""Inference: a trained model on new audio.

``predictor`` (:class:`Predictor`: files and arrays at any rate, speaker adaptation) · ``ensemble``
(:class:`Ensemble`: several models, the mean of their probabilities) · ``batch``
(probabilities for a whole dataset) · ``streaming`` (:class:`StreamingPredictor`: window, hop,
voice-activity gate, smoothing; :func:`run_stream`, the one streaming loop) · ``live`` (microphone
and file sources, the terminal and matplotlib views, the notebook widget).
"""
from .ensemble import Ensemble
from .predictor import Prediction, Predictor
from .streaming import StreamingPredictor, StreamSettings

__all__ = ["Ensemble", "Prediction", "Predictor", "StreamSettings", "StreamingPredictor"]
