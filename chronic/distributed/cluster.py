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

    A LocalCluster gets `n_workers` worker processes (default: one per CPU core, at most 8) with one thread each:
    separate processes keep one worker's memory from another's, and each task's numpy / XGBoost work keeps its
    one core busy.
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


@contextmanager
def task_client(address: str | None) -> Iterator[object | None]:
    """The Dask client for work started inside a Prefect task (or anywhere): None when there is no Dask.

    In order: on a Dask worker (a task submitted to a DaskTaskRunner), that cluster through
    `distributed.worker_client`, which frees the worker's slot while it waits; with `address` ('local' or a
    scheduler), a client to it; else the process's default client if there is one (a flow running on a
    DaskTaskRunner has it); else None.
    """
    from distributed import get_client, get_worker, worker_client

    try:
        get_worker()
    except ValueError:  # not on a Dask worker
        pass
    else:
        with worker_client() as client:
            yield client
        return
    if address:
        with dask_client(address) as client:
            yield client
        return
    try:
        client = get_client()
    except ValueError:  # no Dask here
        client = None
    yield client


def dask_task_runner(address: str, *, n_workers: int | None = None) -> object:
    """A Prefect `DaskTaskRunner` on `address` ('local': a LocalCluster shaped as `dask_client` shapes it)."""
    from prefect_dask import DaskTaskRunner

    if address == LOCAL:
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": n_workers or max(1, min(os.cpu_count() or 1, 8)), "threads_per_worker": 1,
            "processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=address)
