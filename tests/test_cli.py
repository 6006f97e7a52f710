import subprocess
import sys

from ser_lib import ravdess


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ser_lib", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_synth_cli_writes_a_corpus(tmp_path):
    out = tmp_path / "synthetic"
    run = run_cli("synth", "--out", str(out), "--actors", "2", "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert f"120 clips of 2 actors in {out}" in run.stdout
    assert len(ravdess.index(out)) == 120


def test_synth_examples_cli(tmp_path):
    run = run_cli("synth", "--examples", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert len(list(tmp_path.glob("*.wav"))) == 8


def test_help_lists_the_subcommands():
    run = run_cli("--help")
    assert run.returncode == 0
    for command in ("synth", "download", "index"):
        assert command in run.stdout
