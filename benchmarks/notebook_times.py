"""Runtime of every course notebook with its default parameters, as a learner meets it.

Runs the notebooks in order with papermill, twice: first on an empty cache folder (**cold**: the
first notebooks also build the synthetic corpus, the clip features and the small demo model), then
again on the filled cache (**warm**). Each run is a fresh kernel, so kernel start-up and imports are
included. Prints seconds per notebook and the totals.

    python benchmarks/notebook_times.py [--notebooks 01,02] [--cache FOLDER] [--out runs/notebook-times]

``--cache`` keeps the cache folder (default: a new temporary one, removed at the end); the executed
notebooks are written to ``--out``. Notebook 04 trains into ``runs/notebook04``, as when run by hand.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(path: Path, out: Path, env: dict) -> float:
    """Seconds papermill takes to execute ``path`` into ``out`` (raises with its log if it fails)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(NOTEBOOKS), str(path),
                           str(out), "--no-progress-bar"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{path.name} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default=None, help="comma-separated number prefixes (default: all)")
    parser.add_argument("--cache", default=None, help="cache folder (default: a new temporary one)")
    parser.add_argument("--out", default="runs/notebook-times")
    args = parser.parse_args()
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        wanted = args.notebooks.split(",")
        paths = [p for p in paths if p.name[:2] in wanted]
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="ser-notebook-times-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SER_CACHE_DIR=str(cache))
    print(f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}; cache {cache}")
    times: dict[str, list[float]] = {p.stem: [] for p in paths}
    try:
        for run in ("cold", "warm"):
            for path in paths:
                seconds = run_notebook(path, out / f"{path.stem}-{run}.ipynb", env)
                times[path.stem].append(seconds)
                print(f"  {run} {path.stem}: {seconds:.0f} s", flush=True)
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"\n{'notebook':<26} {'cold s':>7} {'warm s':>7}")
    for name, (cold, warm) in times.items():
        print(f"{name:<26} {cold:7.0f} {warm:7.0f}")
    print(f"{'total':<26} {sum(t[0] for t in times.values()):7.0f} {sum(t[1] for t in times.values()):7.0f}")


if __name__ == "__main__":
    main()
