"""Strip outputs from the course notebooks before committing.

Outputs are removed from every code cell except those marked ``# NBVAL_CHECK_OUTPUT``: their small,
deterministic outputs are what ``pytest --nbval-lax`` compares a fresh run against. Give
``--from DIR`` with executed copies (e.g. from papermill) to take those outputs from there.

    python scripts/strip_notebooks.py [--from DIR] [notebooks/*.ipynb]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

CHECK = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parent.parent


def strip(path: Path, executed: Path | None = None) -> None:
    nb = nbformat.read(path, as_version=4)
    source = nbformat.read(executed, as_version=4) if executed and executed.exists() else None
    executed_cells = {c.get("id"): c for c in source.cells} if source is not None else {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if CHECK in cell.source:  # nbval compares against these outputs; it needs them marked as run
            if cell.get("id") in executed_cells:
                cell.outputs = executed_cells[cell["id"]].outputs
            cell.execution_count = 1
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = 1
        else:
            cell.execution_count = None
            cell.outputs = []
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--from", dest="executed", type=Path, help="folder with executed copies of the notebooks")
    args = parser.parse_args()
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        strip(path, args.executed / path.name if args.executed else None)
        print(f"stripped {path}")


if __name__ == "__main__":
    main()
