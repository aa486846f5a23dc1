"""RunStore against the real Firestore emulator: claims, leases, finishing, replay."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import pytest

from worker import outcomes
from worker.errors import Superseded
from worker.runs import ClaimKind, Replay, RunStore, fingerprint, now, replay_of

pytestmark = pytest.mark.emulators


@pytest.fixture
def store(emulator_env, clean_firestore) -> RunStore:
    client = emulator_env.firestore_client()
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
    first.lease.release("gateway down")
    second = store.claim("k", FP, "summary", "h2")
    assert second.kind is ClaimKind.TAKEOVER
    assert second.attempt == 2
    assert store.get("k")["holder"] == "h2"
    with pytest.raises(Superseded):
        first.lease.renew()
    assert first.lease.lost.is_set()
    second.lease.renew()


def test_a_superseded_holder_cancels_and_cannot_write(store: RunStore) -> None:
    first = store.claim("k", FP, "summary", "h1")
    cancelled = []
    first.lease.on_lost(lambda: cancelled.append(True))
    first.lease.release("slow")
    store.claim("k", FP, "summary", "h2")
    with pytest.raises(Superseded):
        first.lease.write({"legs.x": {"state": "planned"}})
    assert cancelled == [True]
    with pytest.raises(Superseded):
        first.lease.check()
    assert "x" not in store.get("k")["legs"]


def test_a_lease_is_untrusted_after_release(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    claim.lease.check()
    claim.lease.release("gateway down")
    with pytest.raises(Superseded):
        claim.lease.check()  # no order may leave once the lease is handed back


def test_a_write_whose_answer_was_lost_is_recognised_as_our_own(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    # Our write landed but we never learnt its update time: the precondition now fails.
    store._ref(claim.doc_id).update({"lease_expires_at": now() + timedelta(seconds=30)})
    claim.lease.write({"recovery_point": {"stage": "planned"}})
    assert store.get("k")["recovery_point"] == {"stage": "planned"}
    assert not claim.lease.lost.is_set()


def test_finish_then_replay(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    record = claim.lease.finish(outcome(store, "k"))
    assert record["state"] == "SUCCEEDED"
    assert record["published"] is False
    assert replay_of(store.get("k")) is Replay.WAIT  # its finisher is publishing
    store.mark_published(claim.doc_id)
    again = store.claim("k", FP, "summary", "h2")
    assert again.kind is ClaimKind.FINISHED
    assert again.lease is None
    assert again.record["published"] is True
    assert again.record["outcome"]["id"] == claim.doc_id
    claim.lease.release("late")  # after finishing, releasing changes nothing
    assert store.get("k")["state"] == "SUCCEEDED"


def test_replay_publishes_when_the_finisher_failed(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    claim.lease.finish(outcome(store, "k"))
    store.mark_publish_failed(claim.doc_id)
    assert replay_of(store.get("k")) is Replay.PUBLISH


def test_finish_by_a_superseded_holder_keeps_the_takers_record(store: RunStore) -> None:
    first = store.claim("k", FP, "summary", "h1")
    first.lease.release("slow")
    second = store.claim("k", FP, "summary", "h2")
    second.lease.finish(outcome(store, "k"))
    assert first.lease.finish(outcome(store, "k", "failed")) is None
    assert store.get("k")["state"] == "SUCCEEDED"


def test_twenty_concurrent_claims_yield_one_holder(store: RunStore) -> None:
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        kinds = list(pool.map(lambda i: store.claim("hot", FP, "summary", f"h{i}").kind, range(20)))
    assert kinds.count(ClaimKind.NEW) == 1
    assert set(kinds) <= {ClaimKind.NEW, ClaimKind.BUSY}


def test_twenty_concurrent_takeovers_yield_one_holder(store: RunStore) -> None:
    store.claim("hot", FP, "summary", "h0").lease.release("gone")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        kinds = list(pool.map(lambda i: store.claim("hot", FP, "summary", f"h{i}").kind, range(20)))
    assert kinds.count(ClaimKind.TAKEOVER) == 1
    assert set(kinds) <= {ClaimKind.TAKEOVER, ClaimKind.BUSY}


def test_record_final_is_final_and_first_wins(store: RunStore) -> None:
    fp = "f" * 64

    def build(kind: str):
        return lambda record: outcome(store, "bad", kind)

    first = store.record_final("bad", fp, "", build("rejected"))
    assert first.kind is ClaimKind.NEW
    assert store.get("bad")["state"] == "REJECTED"
    assert store.record_final("bad", fp, "", build("rejected")).kind is ClaimKind.FINISHED
    assert store.record_final("bad", "0" * 64, "", build("succeeded")).kind is ClaimKind.MISMATCH


def test_record_final_finishes_an_abandoned_running_record(store: RunStore) -> None:
    claim = store.claim("k", FP, "summary", "h1")
    claim.lease.write({"legs.a": {"state": "sent", "order_id": 7}})
    claim.lease.release("gateway down")
    seen = []

    def build(record):
        seen.append(record)
        return outcome(store, "k", "skipped")

    final = store.record_final("k", FP, "summary", build)
    assert final.kind is ClaimKind.NEW
    assert seen[-1]["legs"] == {"a": {"state": "sent", "order_id": 7}}
    assert store.get("k")["state"] == "SKIPPED"
    assert claim.lease.finish(outcome(store, "k")) is None


def test_record_final_waits_for_a_live_run(store: RunStore) -> None:
    store.claim("k", FP, "summary", "h1")
    final = store.record_final("k", FP, "summary", lambda r: outcome(store, "k", "skipped"))
    assert final.kind is ClaimKind.BUSY
    assert store.get("k")["state"] == "RUNNING"


@pytest.mark.parametrize("key", ["../..", "__x__", "a" * 256, ".", "ключ/🔑", "k\x00y"])
def test_hostile_keys_are_stored_under_a_hash(store: RunStore, key: str) -> None:
    assert store.claim(key, FP, "summary", "h").kind is ClaimKind.NEW
    assert store.get(key)["key"] == key


def test_trading_config_merges_common_and_mode_documents(emulator_env, clean_firestore) -> None:
    from worker.config import firestore_config_loader, load_settings

    client = emulator_env.firestore_client()
    client.collection("config").document("common").set({"tradingEnabled": True, "x": 1})
    client.collection("config").document("paper").set({"tradingEnabled": False})
    load = firestore_config_loader(client, load_settings({"TRADING_MODE": "paper"}))
    assert load() == {"tradingEnabled": False, "x": 1}
