"""The project's own files agree with each other."""
import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).replace("'", '"').lower()


def test_environment_yml_lists_the_same_python_requirements_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = [r for r in pip_section if not r.startswith("-")]
    assert sorted(map(_normalise, listed)) == sorted(map(_normalise, wanted))
    assert "-e ." in pip_section
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert {"ffmpeg", "libsndfile", "portaudio", "pip"} <= {d.split("=")[0] for d in conda}
    assert env["channels"] == ["conda-forge"]


def test_torch_is_pinned_to_the_gpu_image_release():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    # exactly the GPU image's pair: torchaudio 2.11.1 (on PyPI since) does not load beside torch 2.11.0
    assert "torch==2.11.0" in deps and "torchaudio==2.11.0" in deps


def test_console_script_points_at_the_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ser"] == "ser_lib.cli:main"
