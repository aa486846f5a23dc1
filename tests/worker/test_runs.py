"""RunStore against the real Firestore emulator: claims, leases, finishing, replay."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from worker import outcomes
from worker.runs import ClaimKind, RunStore, fingerprint, now

pytestmark = pytest.mark.emulators


@pytest.fixture
def store(emulator_env, clean_firestore) -> RunStore:
    client = firestore.Client(project=emulator_env.project, credentials=AnonymousCredentials())
    return RunStore(
        client, "intent_runs", "ib-paper", lease_seconds=30, retention=timedelta(days=7)
    )


def outcome(store: RunStore, key: str, kind: str = "succeeded") -> dict:
    return outcomes.build(
        event_id=store.doc_id(key),
        outcome=kind,
        source="/t",
        subject="summary",
        time=now(),
        data={"result": {"ok": True}},
    )


FP = fingerprint("summary", {}, None, False)


def test_first_claim_creates_a_complete_running_record(store: RunStore) -> None:
    claim = store.claim("a/b", FP, "summary", "h1")
    assert claim.kind is ClaimKind.NEW
    assert claim.attempt == 1
    record = store.get("a/b")
    assert record["state"] == "RUNNING"
    assert record["holder"] == "h1"
    assert record["key"] == "a/b"
    for name in (
        "fingerprint",
        "lease_expires_at",
        "legs",
        "recovery_point",
        "outcome",
        "published",
        "created_at",
        "finished_at",
        "expires_at",
    ):
        assert name in record
    assert record["expires_at"] > now() + timedelta(days=6)


def test_second_claim_while_lease_live_is_busy(store: RunStore) -> None:
    store.claim("k", FP, "summary", "h1")
    assert store.claim("k", FP, "summary", "h2").kind is ClaimKind.BUSY


def test_other_fingerprint_is_a_mismatch_even_while_running(store: RunStore) -> None:
    store.claim("k", FP, "summary", "h1")
    other = fingerprint("summary", {"sections": ["fills"]}, None, False)
    assert store.claim("k", other, "summary", "h2").kind is ClaimKind.MISMATCH
    assert store.mismatch_id("k", other) != store.doc_id("k")


def test_release_lets_the_next_delivery_take_over(store: RunStore) -> None:
    first = store.claim("k", FP, "summary", "h1")
    store.release(first, "gateway down")
    second = store.claim("k", FP, "summary", "h2")
    assert second.kind is ClaimKind.TAKEOVER
    assert second.attempt == 2
    assert store.get("k")["holder"] == "h2"
    assert not store.renew(first), "the old holder lost the lease"
    assert store.renew(second)


def test_finish_then_replay(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    record = store.finish(claim, outcome(store, "k"))
    assert record["state"] == "SUCCEEDED"
    assert record["published"] is False
    store.mark_published(claim.doc_id)
    again = store.claim("k", FP, "summary", "h2")
    assert again.kind is ClaimKind.FINISHED
    assert again.record["published"] is True
    assert again.record["outcome"]["id"] == claim.doc_id


def test_finish_by_a_superseded_holder_keeps_the_takers_record(store: RunStore) -> None:
    first = store.claim("k", FP, "summary", "h1")
    store.release(first, "slow")
    second = store.claim("k", FP, "summary", "h2")
    store.finish(second, outcome(store, "k"))
    record = store.finish(first, outcome(store, "k", "failed"))
    assert record["state"] == "SUCCEEDED"


def test_twenty_concurrent_claims_yield_one_holder(store: RunStore) -> None:
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        kinds = list(pool.map(lambda i: store.claim("hot", FP, "summary", f"h{i}").kind, range(20)))
    assert kinds.count(ClaimKind.NEW) == 1
    assert set(kinds) <= {ClaimKind.NEW, ClaimKind.BUSY}


def test_record_final_is_final_and_first_wins(store: RunStore) -> None:
    fp = "f" * 64
    first = store.record_final("bad", fp, "", outcome(store, "bad", "rejected"))
    assert first.kind is ClaimKind.NEW
    assert store.get("bad")["state"] == "REJECTED"
    assert (
        store.record_final("bad", fp, "", outcome(store, "bad", "rejected")).kind
        is ClaimKind.FINISHED
    )
    assert store.record_final("bad", "0" * 64, "", outcome(store, "bad")).kind is ClaimKind.MISMATCH


@pytest.mark.parametrize("key", ["../..", "__x__", "a" * 256, ".", "ключ/🔑", "k\x00y"])
def test_hostile_keys_are_stored_under_a_hash(store: RunStore, key: str) -> None:
    assert store.claim(key, FP, "summary", "h").kind is ClaimKind.NEW
    assert store.get(key)["key"] == key


def test_trading_config_merges_common_and_mode_documents(emulator_env, clean_firestore) -> None:
    from worker.config import firestore_config_loader, load_settings

    client = firestore.Client(project=emulator_env.project, credentials=AnonymousCredentials())
    client.collection("config").document("common").set({"tradingEnabled": True, "x": 1})
    client.collection("config").document("paper").set({"tradingEnabled": False})
    load = firestore_config_loader(client, load_settings({"TRADING_MODE": "paper"}))
    assert load() == {"tradingEnabled": False, "x": 1}
