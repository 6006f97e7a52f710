"""Data: from a folder of recordings to padded batches.

``labels`` (the emotion vocabulary and subsets) · ``ravdess`` (naming convention and clip table) ·
``synth`` (the built-in synthetic corpus) · ``download`` (RAVDESS from Zenodo) · ``splits`` (by
actor only) · ``audio`` (reading, resampling, trimming, :class:`~ser_lib.data.audio.AudioSettings`) ·
``features`` (the log-mel front end, MFCC, prosody, clip descriptors) · ``cache`` (per-file results
on disk) · ``augment`` (waveform augmentation, SpecAugment) · ``dataset`` (datasets, batches, sampling).
"""
