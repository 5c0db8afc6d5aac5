"""What every test shares: one data cache for the whole suite, in a temporary folder rather than
the user's ~/.cache/resnets, so that the CIFAR-10 JPEG copy is decoded once per run of the suite
and tests never read or leave files there. Subprocesses inherit it.

`make test` runs the suite in two pytest-xdist workers, one torch thread each (two threads each
would oversubscribe two cores, and an oversubscribed OpenMP runtime crawls), handing out one test
at a time (`--maxschedchunk 1`), the slow ones first. A module-scoped fixture may then be made by
both workers; `--dist loadgroup`, which would keep its tests on one, groups nothing with pytest
9.2 (pytest-xdist#1386). The workers share the cache: a worker that wants data the other is
decoding waits for it (``data.cache.locked``), and the writes are atomic (``files.atomic_write``)."""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # and in the subprocesses the tests start


def pytest_collection_modifyitems(items):
    """The tests marked slow first, in their files' order: two xdist workers that start on them and
    fill in with the short ones end within seconds of each other, where a slow test handed out last
    would run alone at the end (longest first, the usual rule for balancing work)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


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
