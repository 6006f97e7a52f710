"""The run settings: every option of a training run, its default and its help text, in one place.

:class:`TrainConfig` is the single source of truth: ``python -m ser_lib train`` generates its options
from these fields (:func:`ser_lib.options.add_options`), notebook 04's parameters are a subset of them by
name, and the Makefile and README quote them. The default model is the spectrogram model (no audio
backbone; its descriptors include a small pretrained voice encoder's statistics), which trains on a CPU;
``--backbone facebook/wav2vec2-base`` gives the wav2vec 2.0 recipe for a GPU.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..data.audio import AudioSettings
from ..data.augment import SpecAugment, WaveAugment
from ..data.corpora import CORPORA, Dataset, datasets_of
from ..data.features import DESCRIPTOR_SETS, DESCRIPTOR_VERSION, TRAINABLE_DESCRIPTOR_VERSIONS, descriptor_names
from ..data.labels import SHARED, SUBSETS
from ..data.splits import DEFAULT_TEST_SPEAKERS, DEFAULT_VAL_SPEAKERS, parse_speakers
from ..errors import ConfigError
from ..model.backbone import FREEZE_CHOICES, is_backbone_name
from ..model.layers import POOLINGS
from ..model.ser_model import ModelConfig

#: Options a resumed run may change: they do not change what the run computes (``--epochs`` extends
#: an interrupted run; the learning-rate schedule is stretched over the new total).
RESUMABLE: tuple[str, ...] = ("epochs", "patience", "num_workers", "device", "cache_encoder", "progress")
#: Options about how a run is started, not what it computes: never compared on ``--resume``.
START_OPTIONS: tuple[str, ...] = ("resume", "overwrite", "output_dir")
#: What a run saved before an option existed did, for options whose default changed what runs compute
#: (so such a run resumes only with that value, never silently with the new one).
BEFORE_OPTION: dict[str, object] = {"trim_floor_db": None, "cold_start_noise": 0.0, "bucket_by_length": False,
                                    "average_epochs": 0.0, "corpus_stats": False, "mixup": 0.0,
                                    "descriptor_set": "ser"}
#: The same for the fields of grouped options (``--augment_*``): what a run saved before the field did.
BEFORE_FIELD: dict[str, dict[str, object]] = {"augment_settings": {"tilt_db": 0.0}}


def option(default, help: str, **extra):
    """A dataclass field with its command-line help (and optionally ``choices``, ``parse``, ``prefix``)."""
    factory = {"default_factory": default} if callable(default) and isinstance(default, type) else {"default": default}
    return field(**factory, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    """All options of a training run (``python -m ser_lib train -h`` lists them with this help)."""

    # data
    dataset: tuple[str, ...] = option((), "a dataset as NAME=PATH, repeatable to train on several corpora "
                                          f"({', '.join(CORPORA)}; default: the built-in synthetic corpus)",
                                      append=True, metavar="NAME=PATH")
    dataset_root: str | None = option(None, "a RAVDESS folder: the same as --dataset ravdess=PATH")
    output_dir: str = option("runs/latest", "run folder")
    emotion_subset: str = option("all", "emotion classes: all (8), basic6, basic4, or shared (the emotions every "
                                        "dataset has)", choices=(*SUBSETS, SHARED))
    test_speakers: tuple[str, ...] = option(DEFAULT_TEST_SPEAKERS, "test speakers of the fixed split, e.g. 21-24 "
                                            "or cremad:1001-1010", parse=parse_speakers)
    val_speakers: tuple[str, ...] = option(DEFAULT_VAL_SPEAKERS, "validation speakers of the fixed split, e.g. "
                                           "19,20 (none: no validation)", parse=parse_speakers)
    test_corpus: str | None = option(None, "hold out this whole corpus as the test set; the others train")
    folds: int | None = option(None, "speaker-wise K-fold cross-validation (within each corpus) instead of the "
                                     "fixed split")
    corpus_balance: bool = option(False, "draw as many training clips from each corpus (sampling with replacement)")
    max_seconds: float = option(AudioSettings.max_seconds,
                                "crop length in seconds (random crops in training, centre crops otherwise)")
    trim_db: float | None = option(AudioSettings.trim_db, "trim leading/trailing audio this far (dB) below the "
                                                          "peak (none: off)")
    trim_floor_db: float | None = option(AudioSettings.trim_floor_db, "trim also what is less than this (dB) "
                                         "above the clip's noise floor (none: the peak rule only)")
    # model
    backbone: str = option("none", "pretrained encoder: a Hugging Face name (facebook/wav2vec2-base) or local "
                                   "folder; none: the spectrogram model (no audio backbone)")
    freeze: str = option("feature_encoder", "what of the encoder stays fixed", choices=FREEZE_CHOICES)
    spectrogram: bool = option(True, "the log-mel CNN branch")
    descriptors: bool = option(True, "clip descriptors (--descriptor_set) beside the pooled vector")
    descriptor_set: str = option("ser+voice", "which clip descriptors: ser (pitch, energy, MFCC and spectral "
                                              "statistics), egemaps (openSMILE's 88 eGeMAPS functionals), voice (a "
                                              "pretrained voice encoder's layer statistics; its weights download on "
                                              "first use), ser+egemaps or ser+voice (the two beside each other)",
                                 choices=DESCRIPTOR_SETS)
    descriptor_version: int = option(DESCRIPTOR_VERSION, "version of the ser descriptors: 2 (speech frames only) or "
                                                         "3 (the same after subtracting the room's noise floor)",
                                     choices=TRAINABLE_DESCRIPTOR_VERSIONS)
    speaker_norm: bool = option(True, "normalise inputs with each speaker's own unlabelled audio")
    cold_start_rate: float = option(0.25, "with --speaker_norm: this fraction of training clips (drawn each epoch) "
                                          "gets the training data's statistics instead, as a new voice does at first")
    cold_start_noise: float = option(0.5, "this share of the cold-start clips is described from a noisy copy (white "
                                          "or pink noise in the --augment_snr_db range): another room's noise floor "
                                          "shifts the descriptors, as another corpus does")
    corpus_stats: bool = option(True, "with --speaker_norm and several --dataset: the training data's statistics "
                                      "are each corpus's own for its clips (training and test), the pooled ones "
                                      "for a voice of another corpus or a microphone")
    enrolment_rate: float = option(0.0, "with --speaker_norm: this fraction of training clips (drawn each epoch) "
                                        "gets statistics of a few other clips of their speaker instead (1, 3 or 10 "
                                        "at random, or the neutral ones), as a voice heard briefly does")
    d_model: int = option(192, "width of the fused frames, the context transformer and the heads")
    cnn_channels: tuple[int, ...] = option((32, 64, 128), "channels of the CNN blocks")
    context_layers: int = option(2, "context transformer layers (0: none)")
    pooling: str = option("attention", "how frames become one vector: multi-head attention pooling, or their mean",
                          choices=POOLINGS)
    dropout: float = option(0.2, "dropout of the new layers")
    # optimisation
    batch_size: int = option(16, "clips per batch")
    bucket_by_length: bool = option(True, "batch clips of similar length together (less padding, faster epochs)")
    epochs: int = option(50, "epochs at most (early stopping may end sooner)")
    learning_rate: float = option(3e-5, "learning rate of the pretrained encoder")
    head_lr: float = option(1e-3, "learning rate of the new layers (CNN, fusion, context, pooling, heads)")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and norms)")
    warmup: float = option(0.05, "linear warm-up as a fraction of all steps, then cosine annealing")
    average_epochs: float = option(3.0, "validate and save a moving average of the weights over about N epochs, "
                                        "from epoch 2N on (history.csv's validation scores from then are the "
                                        "average's; before, and with N = 0, the raw weights)")
    grad_clip: float = option(1.0, "gradient norm clipping (0: off)")
    gender_weight: float = option(0.3, "weight of the auxiliary gender loss (0: no gender head)")
    balance: str = option("loss", "class balancing by loss weights, by sampling, or none",
                          choices=("loss", "sampler", "none"))
    label_smoothing: float = option(0.1, "label smoothing of the emotion loss")
    mixup: float = option(0.0, "mixup of clip vectors: each batch is mixed with a shuffled copy of itself after "
                               "pooling, labels too, by a weight drawn from Beta(a, a) for this a (0: off)")
    patience: int = option(10, "early stopping: epochs without a better validation UAR (0: off)")
    select_window: int = option(3, "judge each epoch by the mean validation UAR of this many epochs up to it "
                                   "(1: its own), against one lucky epoch on few validation speakers")
    augment: bool = option(True, "waveform augmentation (speed, shift, noise, gain; spectral tilt when asked)")
    augment_settings: WaveAugment = option(WaveAugment, "waveform augmentation strengths", prefix="augment_")
    spec_augment: bool = option(True, "SpecAugment on the log-mel branch")
    spec_augment_settings: SpecAugment = option(SpecAugment, "SpecAugment strengths", prefix="spec_")
    # running
    seed: int = option(0, "random seed: the same seed gives the same run")
    device: str = option("auto", "compute device: auto (CUDA, else Apple MPS, else CPU), cpu, cuda[:N] or mps")
    mixed_precision: str = option("auto", "auto: bf16 where supported, fp16 on other GPUs, off on the CPU",
                                  choices=("auto", "no", "fp16", "bf16"))
    num_workers: int = option(0, "data-loader worker processes")
    cache_encoder: bool = option(True, "with --freeze backbone: cache the encoder's layers on disk")
    resume: bool = option(False, "continue an interrupted run from its last.pt (the same options; see "
                                 "RESUMABLE for what may change)")
    overwrite: bool = option(False, "replace the run an earlier train left in --output_dir (its checkpoints, "
                                    "history, manifest and summaries; other files are kept)")
    quick: bool = option(False, "smoke run: two batches per epoch, two epochs")
    progress: bool = option(True, "progress bars")

    def validate(self) -> None:
        """:class:`ConfigError` naming the option, for any value that cannot work."""
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"--{f.name} must be one of {', '.join(map(str, choices))}, "
                                  f"got {getattr(self, f.name)!r}")
        checks = [
            (not (self.resume and self.overwrite), "--resume continues a run and --overwrite replaces it: give one"),
            (self.batch_size >= 1, "--batch_size must be at least 1"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.learning_rate > 0 and self.head_lr > 0, "learning rates must be positive"),
            (0 <= self.warmup < 1, "--warmup is a fraction of all steps, in [0, 1)"),
            (self.max_seconds > 0.5, "--max_seconds must be above 0.5"),
            (self.gender_weight >= 0, "--gender_weight must not be negative"),
            (0 <= self.cold_start_rate < 1, "--cold_start_rate is a fraction of the training clips, in [0, 1)"),
            (0 <= self.cold_start_noise <= 1, "--cold_start_noise is a share of the cold-start clips, in [0, 1]"),
            (0 <= self.enrolment_rate and self.cold_start_rate + self.enrolment_rate < 1,
             "--enrolment_rate is a fraction of the training clips, and with --cold_start_rate below 1"),
            (self.average_epochs >= 0, "--average_epochs must not be negative (0: off)"),
            (self.mixup >= 0, "--mixup must not be negative (0: off)"),
            (self.select_window >= 1, "--select_window must be at least 1"),
            (self.folds is None or self.folds >= 2, "--folds needs at least 2"),
            (not (self.folds and self.test_corpus), "--folds and --test_corpus are two different splits: give one"),
            (self.num_workers >= 0, "--num_workers must not be negative"),
            (0 <= self.augment_settings.tilt_db <= 6, "--augment_tilt_db is a tilt in dB per octave, in [0, 6]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.descriptors and "voice" in self.descriptor_set.split("+"):
            from ..data import voice

            try:
                voice.weights_path()
            except ConfigError as error:
                raise ConfigError(f"--descriptor_set {self.descriptor_set}: {error}; or train with --descriptor_set "
                                  "ser") from None

    def resolved(self) -> "TrainConfig":
        """The config with its dataset folders as absolute paths (a resume from elsewhere compares equal)."""
        root = str(Path(self.dataset_root).expanduser().resolve()) if self.dataset_root else None
        return replace(self, dataset_root=root, dataset=tuple(str(Dataset.parse(t)) for t in self.dataset))

    def datasets(self) -> list[Dataset]:
        """The run's datasets (``--dataset_root`` is ``--dataset ravdess=PATH``; none: the synthetic corpus)."""
        return datasets_of(self.dataset, self.dataset_root) or [Dataset("synthetic")]

    @property
    def has_backbone(self) -> bool:
        """Whether the run fine-tunes (or freezes) a pretrained encoder."""
        return is_backbone_name(self.backbone)

    def model_config(self, num_emotions: int) -> ModelConfig:
        """The architecture these options describe, for ``num_emotions`` classes."""
        return ModelConfig(
            num_emotions=num_emotions, backbone=self.backbone if self.has_backbone else None,
            freeze=self.freeze, spectrogram=self.spectrogram, d_model=self.d_model,
            cnn_channels=tuple(self.cnn_channels), context_layers=self.context_layers, dropout=self.dropout,
            pooling=self.pooling,
            gender_head=self.gender_weight > 0,
            descriptor_dim=len(descriptor_names(self.descriptor_set)) if self.descriptors else 0,
        )

    def audio_settings(self) -> AudioSettings:
        return AudioSettings(trim_db=self.trim_db, max_seconds=self.max_seconds, trim_floor_db=self.trim_floor_db)

    def wave_augment(self) -> WaveAugment | None:
        return replace(self.augment_settings, sample_rate=self.audio_settings().sample_rate) if self.augment else None

    def spec_augmenter(self) -> SpecAugment | None:
        return self.spec_augment_settings if self.spec_augment else None

    def to_dict(self) -> dict:
        """Plain values (tuples as lists), as stored in checkpoints and manifests."""
        return json.loads(json.dumps(asdict(self)))

    def changes_from(self, saved: dict) -> dict[str, tuple]:
        """``{option: (saved value, this value)}`` for each option that differs from a saved ``to_dict``
        (:data:`START_OPTIONS` are left out; an option or grouped field the saved run did not know counts as
        what that run did, :data:`BEFORE_OPTION` and :data:`BEFORE_FIELD`, or is left out)."""
        saved = {**BEFORE_OPTION, **saved}
        for name, defaults in BEFORE_FIELD.items():
            if isinstance(saved.get(name), dict):
                saved[name] = {**defaults, **saved[name]}
        return {name: (saved[name], value) for name, value in self.to_dict().items()
                if name in saved and name not in START_OPTIONS and saved[name] != value}
