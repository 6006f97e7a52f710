"""Worker processes run one thread each, so N workers use N cores instead of oversubscribing them."""
from __future__ import annotations

import torch  # noqa: F401  (loaded before the pool starts, as in training)

from ser_lib.workers import process_pool


def _threads(_: int) -> tuple[int, int]:
    from threadpoolctl import threadpool_info

    return max(pool["num_threads"] for pool in threadpool_info()), torch.get_num_threads()


def test_each_worker_runs_one_thread():
    with process_pool(2) as pool:
        counts = list(pool.map(_threads, range(4)))
    assert counts == [(1, 1)] * 4
