import subprocess
import sys

from ser_lib.data import corpora
from conftest import run_cli


def test_synth_cli_writes_a_corpus(tmp_path):
    out = tmp_path / "synthetic"
    run = run_cli("synth", "--out", str(out), "--actors", "2", "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert f"120 clips of 2 actors in {out}" in run.stdout
    assert len(corpora.index(out, "synthetic")) == 120


def test_synth_examples_cli(tmp_path):
    run = run_cli("synth", "--examples", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert len(list(tmp_path.glob("*.wav"))) == 8


def test_help_lists_the_subcommands():
    run = subprocess.run([sys.executable, "-m", "ser_lib", "--help"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0
    for command in ("synth", "download", "index"):
        assert command in run.stdout


def test_train_options_are_generated_from_train_config():
    from dataclasses import fields, replace

    from ser_lib import cli, options
    from ser_lib.data.augment import SpecAugment, WaveAugment
    from ser_lib.training import TrainConfig

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--epochs", "3", "--no-speaker_norm", "--augment_snr_db", "5,20",
                              "--test_speakers", "1-3", "--trim_db", "none", "--spec_time_masks", "4", "--no_progress",
                              "--dataset", "cremad=/data/c", "--dataset", "tess=/data/t"])
    expected = replace(TrainConfig(), epochs=3, speaker_norm=False, test_speakers=("1", "2", "3"), trim_db=None,
                       progress=False, dataset=("cremad=/data/c", "tess=/data/t"),
                       augment_settings=replace(WaveAugment(), snr_db=(5.0, 20.0)),
                       spec_augment_settings=replace(SpecAugment(), time_masks=4))
    assert options.from_args(TrainConfig, args) == expected
    assert options.from_args(TrainConfig, parser.parse_args(["train"])) == TrainConfig()  # the defaults, untouched
    train_help = run_cli("train", "--help").stdout
    for f in fields(TrainConfig):
        if f.name.endswith("_settings"):
            for sub in fields(f.type if isinstance(f.type, type) else eval(f.type)):
                if sub.metadata.get("cli") is not False:
                    assert f"--{f.metadata['prefix']}{sub.name}" in train_help
        else:
            assert f"--{f.name}" in train_help, f"no option for TrainConfig.{f.name}"
    assert "(default: 16)" in train_help and "(default: none)" in train_help  # defaults read from TrainConfig


def test_a_bad_option_value_is_a_usage_error_not_a_traceback():
    run = run_cli("train", "--augment_speeds", "fast")
    assert run.returncode == 2 and "cannot read 'fast'" in run.stderr and "Traceback" not in run.stderr
    run = run_cli("train", "--emotion_subset", "basic5")
    assert run.returncode == 2 and "invalid choice" in run.stderr
    run = run_cli("train", "--descriptor_version", "1")  # computed for old checkpoints, not trained anew
    assert run.returncode == 2 and "invalid choice: 1" in run.stderr and "Traceback" not in run.stderr
    run = run_cli("train", "--test_speakers", "x")
    assert run.returncode == 2 and "cannot read speaker list 'x'" in run.stderr and "Traceback" not in run.stderr
