"""pytest fixtures for Floe's end-to-end tests (see floe_harness.py).

`broker` starts the real `floe serve` on free ports with a fresh data dir and waits for
GET /health. When a test fails, the broker's log is attached to the failure report.
"""

from __future__ import annotations

import shutil

import pytest

from floe_harness import Broker, BrokerError, floe_bin


def pytest_report_header(config):
    return [f"floe binary: {floe_bin()}", f"kcat: {shutil.which('kcat') or 'not found'}"]


@pytest.fixture(scope="session")
def floe_binary():
    path = floe_bin()
    if not path.is_file():
        pytest.fail(
            f"floe binary not found at {path}: build it with `cargo build --release -p broker` "
            "or point FLOE_BIN at it",
            pytrace=False,
        )
    return path


# After this many tests in a row whose broker never came up, later tests fail at once
# instead of each waiting out the startup timeout.
MAX_FAILED_STARTS = 3
_failed_starts = 0


@pytest.fixture
def broker(request, tmp_path, floe_binary):
    """A running broker: .bootstrap, .admin_addr, .data_dir, .stop(), .kill(), .start(), .topic(...)."""
    global _failed_starts
    if _failed_starts >= MAX_FAILED_STARTS:
        pytest.fail(f"not starting floe: it failed to become healthy in the last {_failed_starts} tests "
                    "(see the first failure for its log)", pytrace=False)
    b = Broker(floe_binary, tmp_path)
    _attach_log(request, b)
    try:
        b.start()
    except BrokerError:
        _failed_starts += 1
        raise
    _failed_starts = 0
    yield b
    b.close()


@pytest.fixture
def make_broker(request, floe_binary):
    """Factory for brokers with their own data dir or flags: make_broker(workdir, *extra_args).

    Returns a started Broker (start=False: not started); its log is attached to a failure
    report, and it is stopped at teardown.
    """
    made = []

    def make(workdir, *extra_args, start=True):
        b = Broker(floe_binary, workdir, tuple(extra_args))
        made.append(b)
        _attach_log(request, b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.close()


def _attach_log(request, broker: Broker) -> None:
    request.node._floe_brokers = [*getattr(request.node, "_floe_brokers", []), broker]


@pytest.fixture(scope="session")
def kcat():
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat not found: apt-get install -y --no-install-recommends kcat", pytrace=False)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_floe_brokers", []):
            rep.sections.append((f"floe broker log ({rep.when})", b.log_tail(400)))
