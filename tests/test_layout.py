"""The architecture holds: sub-packages along the data flow, short functions, one source of defaults."""
import ast
import dataclasses
from pathlib import Path

import nbformat
import pytest

from ser_lib.inference import StreamSettings
from ser_lib.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ser_lib"
MAX_FUNCTION_LINES = 60

#: What each sub-package may import from the others (data flows left to right; reports.metrics and
#: reports.plots are leaves that training and the live views use).
ALLOWED = {
    "data": set(),
    "model": {"data"},
    "training": {"data", "model", "inference", "reports.metrics", "reports.summary"},
    "inference": {"data", "model", "reports.plots"},
    "reports": {"data", "model", "inference"},
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """The ser_lib modules a file imports (as dotted names below ser_lib)."""
    package = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = list(base) + (node.module.split(".") if node.module else [])
            found.update(".".join(target + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ser_lib."):
            found.update(f"{node.module[len('ser_lib.'):]}.{alias.name}" for alias in node.names)
    return found


def test_no_function_is_longer_than_about_a_screen():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions: " + "; ".join(long)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_sub_packages_import_only_upstream(package):
    wrong = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in _imports(path):
            head = name.split(".")[0]
            if head in ALLOWED and head != package and head not in ALLOWED[package] and \
                    ".".join(name.split(".")[:2]) not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports ser_lib.{name}")
    assert not wrong, "; ".join(wrong)


def test_the_layout_in_readme_matches_the_tree():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    for package in ALLOWED:
        modules = sorted(p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__")
        line = next(line for line in layout.splitlines() if line.strip().startswith(f"{package}/"))
        for module in modules:
            assert module in line, f"README's Layout does not mention {package}/{module}.py"


def _parameters(notebook: str) -> dict:
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {}
    for node in ast.parse(cell.source).body:
        targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
        value = ast.literal_eval(node.value)
        for target, item in zip(targets, value if isinstance(node.targets[0], ast.Tuple) else [value]):
            values[target.id] = item
    return values


def test_notebook_04_parameters_are_train_config_options_with_its_defaults():
    defaults = TrainConfig()
    quick_overrides = {"output_dir", "epochs", "overwrite"}  # the lesson's quick, repeatable run; make train sets them
    lesson = {"speed_batch_sizes", "speed_seconds", "encoder", "run_recipe"}  # the measurements of sections 4, 5, 8
    params = _parameters("04_training.ipynb")
    assert lesson <= set(params)
    for name, value in params.items():
        if name in lesson:
            continue
        assert name in {f.name for f in dataclasses.fields(TrainConfig)}, f"{name} is not a TrainConfig option"
        if name not in quick_overrides:
            assert value == getattr(defaults, name), f"notebook 04's {name} = {value!r} disagrees with TrainConfig"


def test_notebook_06_stream_parameters_are_the_stream_defaults():
    params, defaults = _parameters("06_live_demo.ipynb"), StreamSettings()
    for name in ("window", "hop", "smoothing"):
        assert params[name] == getattr(defaults, name)
