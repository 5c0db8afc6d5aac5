"""What every test shares: one data cache for the whole suite, in a temporary folder rather than
the user's ~/.cache/resnets, so that the CIFAR-10 JPEG copy is decoded once per run of the suite
and tests never read or leave files there. Subprocesses inherit it."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def suite_cache(tmp_path_factory):
    previous = os.environ.get("RESNETS_CACHE")
    os.environ["RESNETS_CACHE"] = str(tmp_path_factory.mktemp("resnets-cache"))
    yield
    if previous is None:
        del os.environ["RESNETS_CACHE"]
    else:
        os.environ["RESNETS_CACHE"] = previous
