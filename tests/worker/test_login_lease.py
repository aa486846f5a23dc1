"""worker/login_lease.py against the Firestore emulator: one holder at a time, handover, expiry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from google.cloud import firestore

from worker.devstack.emulators import Emulators
from worker.login_lease import LeaseLost, LeaseTimeout, LoginLease, new_holder_id

pytestmark = pytest.mark.emulators
DEPLOYMENT = "ib-paper"


@pytest.fixture
def make_lease(emulator_env: Emulators, clean_firestore: Emulators) -> Callable[..., LoginLease]:
    """Leases of one deployment, each on a Firestore client of its own (as separate containers)."""

    def make(holder: str, ttl: float = 30.0) -> LoginLease:
        client = firestore.Client(project=emulator_env.project)
        return LoginLease(client, DEPLOYMENT, holder, ttl_seconds=ttl)

    return make


def _record(lease: LoginLease) -> dict:
    return lease.doc.get().to_dict() or {}


def test_first_holder_takes_a_free_lease(make_lease: Callable[..., LoginLease]) -> None:
    lease = make_lease("old")
    assert lease.acquire(wait=0) is True
    record = _record(lease)
    assert (record["holder"], record["released"], record["ttl_seconds"]) == ("old", False, 30.0)


def test_a_held_lease_makes_the_next_holder_wait(make_lease: Callable[..., LoginLease]) -> None:
    make_lease("old").acquire(wait=0)
    started = time.monotonic()
    with pytest.raises(LeaseTimeout, match="still held by old"):
        make_lease("new").acquire(wait=1.0)
    assert time.monotonic() - started >= 0.9
    assert _record(make_lease("reader"))["holder"] == "old"


def test_release_hands_the_lease_to_the_waiting_holder(
    make_lease: Callable[..., LoginLease],
) -> None:
    old, new = make_lease("old"), make_lease("new")
    old.acquire(wait=0)
    won = threading.Event()
    waiter = threading.Thread(target=lambda: new.acquire(wait=20) and won.set())
    waiter.start()
    time.sleep(0.5)
    assert not won.is_set()  # still waiting while the old gateway runs
    assert old.release() is True
    waiter.join(timeout=10)
    assert won.is_set()
    assert _record(new)["holder"] == "new"


def test_an_expired_lease_is_taken_over(make_lease: Callable[..., LoginLease]) -> None:
    # The old holder vanished without releasing (SIGKILL): its lease ends ttl after its last write,
    # judged from the record's own timestamps.
    make_lease("old", ttl=1.0).acquire(wait=0)
    started = time.monotonic()
    assert make_lease("new").acquire(wait=10) is True
    assert 0.5 <= time.monotonic() - started < 5
    assert _record(make_lease("reader"))["holder"] == "new"


def test_renewal_keeps_the_lease(make_lease: Callable[..., LoginLease]) -> None:
    old = make_lease("old", ttl=1.5)
    old.acquire(wait=0)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.3):
            old.renew()

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        with pytest.raises(LeaseTimeout):
            make_lease("new").acquire(wait=3.0)
    finally:
        stop.set()
        renewer.join()


@pytest.mark.parametrize("record", ["absent", "released"])
def test_exactly_one_of_many_contenders_wins(
    make_lease: Callable[..., LoginLease], record: str
) -> None:
    # absent: the create() path; released: the update-on-precondition path.
    if record == "released":
        first = make_lease("first")
        first.acquire(wait=0)
        first.release()
    leases = [make_lease(f"c{i}") for i in range(8)]
    barrier = threading.Barrier(len(leases))
    results: dict[str, bool] = {}

    def contend(lease: LoginLease) -> None:
        barrier.wait()
        results[lease.holder] = lease.try_acquire() is None

    threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [holder for holder, won in results.items() if won]
    assert len(winners) == 1
    assert _record(leases[0])["holder"] == winners[0]


def test_a_taken_over_holder_loses_and_cannot_release(
    make_lease: Callable[..., LoginLease],
) -> None:
    old = make_lease("old", ttl=0.5)
    old.acquire(wait=0)
    new = make_lease("new")
    assert new.acquire(wait=10)
    with pytest.raises(LeaseLost, match="held by new"):
        old.renew()
    assert old.release() is False
    assert _record(new)["holder"] == "new"
    assert _record(new)["released"] is False


def test_hold_releases_on_stop(make_lease: Callable[..., LoginLease]) -> None:
    lease, stop, ready = make_lease("old", ttl=1.5), threading.Event(), threading.Event()
    holder = threading.Thread(target=lease.hold, args=(stop, ready.set))
    holder.start()
    assert ready.wait(10)
    time.sleep(1.2)  # past ttl / 3: at least one renewal happened
    assert _record(lease)["renewed_at"] > _record(lease)["acquired_at"]
    stop.set()
    holder.join(timeout=10)
    assert _record(lease)["released"] is True


def test_hold_stopped_while_waiting_never_takes_the_lease(
    make_lease: Callable[..., LoginLease],
) -> None:
    make_lease("old").acquire(wait=0)
    lease, stop, ready = make_lease("new"), threading.Event(), threading.Event()
    holder = threading.Thread(target=lease.hold, args=(stop, ready.set))
    holder.start()
    time.sleep(0.3)
    stop.set()
    holder.join(timeout=10)
    assert not ready.is_set()
    assert _record(lease)["holder"] == "old"


def test_holder_ids_are_unique_per_start() -> None:
    assert new_holder_id() != new_holder_id()


def _cli(emulators: Emulators, action: str, holder: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **emulators.env(),
        "PROJECT_ID": emulators.project,
        "DEPLOYMENT": DEPLOYMENT,
        "LOGIN_LEASE_HOLDER": holder,
    }
    argv = [sys.executable, "-m", "worker.cli", "login-lease", action]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_cli_hold_signals_acquired_and_releases_on_sigterm(
    make_lease: Callable[..., LoginLease], emulator_env: Emulators
) -> None:
    proc = _cli(emulator_env, "hold", "cli-holder")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "acquired"
        assert _record(make_lease("reader"))["holder"] == "cli-holder"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.communicate()
    assert _record(make_lease("reader"))["released"] is True


def test_cli_acquire_and_release(
    make_lease: Callable[..., LoginLease], emulator_env: Emulators
) -> None:
    acquire = _cli(emulator_env, "acquire", "operator")
    assert acquire.wait(timeout=20) == 0, acquire.communicate()[1]
    assert _record(make_lease("reader"))["holder"] == "operator"
    release = _cli(emulator_env, "release", "operator")
    assert release.wait(timeout=20) == 0
    assert _record(make_lease("reader"))["released"] is True


def test_cli_without_a_deployment_is_a_configuration_error(emulator_env: Emulators) -> None:
    env = {**os.environ, **emulator_env.env(), "DEPLOYMENT": "", "K_SERVICE": ""}
    argv = [sys.executable, "-m", "worker.cli", "login-lease", "hold"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 78
    assert "no deployment name" in result.stderr
