"""Reports: what a trained model got right and wrong, in numbers, tables and figures.

``metrics`` (WA, UAR, macro-F1, per-class scores, ROC AUC, calibration) · ``predictions`` (per-clip
probabilities with their clips) · ``report`` (``report.md``: breakdowns, confusions, mistakes) ·
``figures`` (the report's figures) · ``summary`` (the one K-fold ``summary.json`` schema) ·
``evaluation`` (``evaluate``: a checkpoint or a K-fold folder) · ``plots`` (the course's figure style
and its dataset, training and streaming figures).
"""
