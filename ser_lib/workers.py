"""Worker processes for CPU-bound work on many files (clip descriptors, feature tables, synthesis).

Left alone, each worker process would start as many BLAS and OpenMP threads as the machine has cores,
so two workers on two cores run four or more busy threads that wait on each other: measured on a
2-core machine, no faster than a single process. Each worker here runs one thread, so ``N`` workers
keep ``N`` cores busy (twice the descriptors per second on 2 cores).
"""
from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """A process pool of ``workers`` processes (default: one per core), each running one thread."""
    return ProcessPoolExecutor(max_workers=workers, initializer=one_thread)


def one_thread() -> None:
    """Limit this process to one thread: BLAS, OpenMP, and PyTorch's intra-op pool when loaded."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
