"""The course notebooks: structure, stripped outputs, papermill parameters.

Executing them is nbval's job (`pytest --nbval-lax` collects notebooks/*.ipynb, see pyproject.toml).
"""
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_dataset_tour", "02_feature_exploration", "03_model_building", "04_training", "05_evaluation",
            "06_live_demo", "07_cross_corpus", "08_baseline_ladder"]
CHECK = "# NBVAL_CHECK_OUTPUT"


def test_the_course_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_parameters_cell_and_exercises(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    for part in ("**Goals.**", "**Runtime.**", "**Needs.**"):
        assert part in first.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    # the lesson ends with its exercises, or with its exercises and then their worked solutions
    texts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    if "## Solutions" in texts[-1]:
        assert "## Exercises" in texts[-2] and nb.cells[-1].cell_type == "code"
    else:
        assert "## Exercises" in nb.cells[-1].source
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if CHECK in cell.source:  # nbval's reference output for this deterministic cell
            assert cell.outputs, f"{path.name}: a {CHECK} cell needs its reference output"
        else:
            assert cell.outputs == [] and cell.execution_count is None, \
                f"outputs in a cell of {path.name}: run scripts/strip_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_injects_parameters_after_the_parameters_cell(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    name = params.source.split("=")[0].strip()
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={name: "overridden"}, prepare_only=True,
                               kernel_name="python3")
    cells = nbformat.read(out, as_version=4).cells
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", [])]
    position = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert injected == [position + 1]
    assert f"{name} = \"overridden\"" in cells[position + 1].source


def test_papermill_override_changes_what_the_notebook_does(tmp_path):
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS[0]), str(out), parameters={"example_actor": 2, "leakage_actors": 4},
                               kernel_name="python3", cwd=str(NOTEBOOKS[0].parent), progress_bar=False)
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "03-01-05-02-01-01-02.wav" in text  # actor 02's angry clip is the one listened to
    assert "clips of 4 speakers" in text
