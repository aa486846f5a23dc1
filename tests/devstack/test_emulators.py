"""The official emulators: clean start and stop, Firestore reset."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from worker.devstack.emulators import Emulators, start_emulators
from worker.devstack.processes import group_members, port_open

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(120)]


def _port_open(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    return port_open(host, int(port))


def test_emulators_start_and_stop_cleanly(tmp_path: Path) -> None:
    emu = start_emulators(tmp_path)
    try:
        assert _port_open(emu.pubsub_host)
        assert _port_open(emu.firestore_host)
        pids = [p.pid for p in emu.processes]
        # gcloud's JVM lives in gcloud's process group, which is ours to stop and nobody else's.
        assert all(len(group_members(pid)) >= 2 for pid in pids)
        print(f"emulators started in {emu.started_in_s:.2f}s")
    finally:
        emu.stop(grace=10)
    assert not _port_open(emu.pubsub_host)
    assert not _port_open(emu.firestore_host)
    assert [group_members(pid) for pid in pids] == [[], []]
    assert (tmp_path / "pubsub-emulator.log").read_text()
    assert (tmp_path / "firestore-emulator.log").read_text()


def test_reset_firestore_deletes_documents(emulator_env: Emulators) -> None:
    # The client finds the emulator through FIRESTORE_EMULATOR_HOST (set by emulator_env).
    client = firestore.Client(project=emulator_env.project, credentials=AnonymousCredentials())
    doc = client.collection("devstack_reset").document("one")
    doc.set({"x": 1})
    assert doc.get().exists
    emulator_env.reset_firestore()
    assert not doc.get().exists
