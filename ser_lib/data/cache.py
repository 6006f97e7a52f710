"""An on-disk cache of per-file results (features, descriptors, encoder outputs).

Keys are the file's content hash, a name and the parameters, so a changed file or setting is simply
another entry; values are written atomically, so an interrupted run never leaves half a file.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..workers import process_pool


class FeatureCache:
    """Per-file results on disk, keyed by the file's content hash, a name and parameters.

    ``cache.get(path, "stats", params, compute)`` returns the stored value or calls ``compute()``
    and stores its result (a NumPy array or a JSON-able object).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def file_digest(path: str | Path) -> str:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def key(self, path: str | Path, name: str, params: dict | object | None = None) -> str:
        if params is not None and hasattr(params, "__dataclass_fields__"):
            params = asdict(params)
        blob = json.dumps({"file": self.file_digest(path), "name": name, "params": params},
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def _files(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def lookup(self, key: str):
        """The stored value for ``key``, or ``None``."""
        npy, js = self._files(key)
        if npy.exists():
            return np.load(npy)
        if js.exists():
            return json.loads(js.read_text())
        return None

    def put(self, key: str, value) -> None:
        """Store ``value`` atomically (a NumPy array as .npy, anything else as JSON)."""
        npy, js = self._files(key)
        target = npy if isinstance(value, np.ndarray) else js
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        if isinstance(value, np.ndarray):
            with open(tmp, "wb") as f:
                np.save(f, value)
        else:
            tmp.write_text(json.dumps(value))
        tmp.replace(target)

    def get_many(self, paths_: Sequence[str | Path], name: str, params, compute: Callable[[object], object],
                 inputs: Sequence[object], workers: int | None = None) -> list:
        """The values of many files: stored ones are read, missing ones computed in worker processes of one
        thread each (``compute(inputs[i])``, a module-level function) and stored."""
        keys = [self.key(p, name, params) for p in paths_]
        values = [self.lookup(k) for k in keys]
        missing = [i for i, value in enumerate(values) if value is None]
        if missing:
            with process_pool(workers) as pool:
                for i, value in zip(missing, pool.map(compute, [inputs[i] for i in missing], chunksize=8)):
                    values[i] = value
                    self.put(keys[i], value)
        return values

    def get(self, path: str | Path, name: str, params, compute: Callable[[], object]):
        key = self.key(path, name, params)
        value = self.lookup(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value
