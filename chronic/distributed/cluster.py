"""Connect to Dask: an existing scheduler by address, or `local` for a LocalCluster on this machine.

Why Dask and nothing home-made: a region's data outgrows one machine long before it outgrows an existing engine;
the same client works against a laptop's LocalCluster, a Kubernetes or an HPC deployment (dask-kubernetes,
dask-jobqueue), and Prefect's DaskTaskRunner speaks to the same scheduler.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

LOCAL = "local"


@contextmanager
def dask_client(address: str, *, n_workers: int | None = None, threads_per_worker: int = 1,
                memory_limit: str | None = None) -> Iterator[object]:
    """A `distributed.Client` for `address` (``local`` starts a LocalCluster and stops it on exit).

    A LocalCluster gets one worker process per core (`n_workers`, default: the CPU count, at most 2 on this
    project's reference machine is the CPU count) with one thread each: the work it is given is numpy / XGBoost
    code that releases the GIL inside each task, and separate processes keep one worker's memory from another's.
    """
    from distributed import Client, LocalCluster

    if not address:
        raise ValueError("a Dask address is needed: 'local' or the scheduler's, e.g. tcp://10.0.0.5:8786")
    if address == LOCAL:
        workers = n_workers or max(1, min(os.cpu_count() or 1, 8))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                               dashboard_address=None, memory_limit=memory_limit or "auto",
                               silence_logs=logging.WARNING)
        client = Client(cluster)
        log.info("started a Dask LocalCluster with %d workers", workers)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    client = Client(address, timeout="30s")
    log.info("connected to the Dask scheduler at %s (%d workers)", address,
             len(client.scheduler_info().get("workers", {})))
    try:
        yield client
    finally:
        client.close()
