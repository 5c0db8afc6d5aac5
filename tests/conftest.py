"""What every test shares: one data cache for the whole suite, in a temporary folder rather than
the user's ~/.cache/resnets, so that the CIFAR-10 JPEG copy is decoded once per run of the suite
and tests never read or leave files there. Subprocesses inherit it.

`make test` runs the suite in two pytest-xdist workers, one torch thread each (two threads each
would oversubscribe two cores, and an oversubscribed OpenMP runtime crawls). The workers share the
cache: its writes are atomic (``files.atomic_write``, ``archives.extract``), so two workers
decoding the same data at once only do the work twice."""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # and in the subprocesses the tests start


@pytest.fixture(scope="session", autouse=True)
def suite_cache(tmp_path_factory):
    previous = os.environ.get("RESNETS_CACHE")
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, shared by its workers (each has its own below it)
    cache = root / "resnets-cache"
    cache.mkdir(exist_ok=True)
    os.environ["RESNETS_CACHE"] = str(cache)
    yield
    if previous is None:
        del os.environ["RESNETS_CACHE"]
    else:
        os.environ["RESNETS_CACHE"] = previous
