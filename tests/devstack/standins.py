"""Stand-ins for ibsim's CLI and the worker app, honouring the same contracts.

They let the process-management code be tested before (and independently of) the real parts:
the ibsim stand-in prints its arguments and `ibsim listening on 127.0.0.1:PORT`, and accepts TCP
connections there and on its --control-port; the app answers /healthz and /readyz like the worker.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, request


def create_app() -> Flask:
    """A minimal app with the worker's health endpoints."""
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    @app.get("/readyz")
    def readyz() -> tuple[str, int]:
        return "ready", 200

    return app


def create_fake_worker() -> Flask:
    """A stand-in worker: wrapped push in, one outcome CloudEvent per idempotency key out.

    The demo's intents succeed with plausible results (fake_result); anything else is
    rejected. Just enough behaviour for the demo's checks; the real pipeline lives in worker/.
    """
    import base64
    import json
    import os

    from google.cloud import pubsub_v1

    app = create_app()
    publisher = pubsub_v1.PublisherClient()  # finds the emulator via PUBSUB_EMULATOR_HOST
    topic = publisher.topic_path(os.environ["PROJECT_ID"], os.environ["RESULTS_TOPIC"])
    seen: set[str] = set()

    @app.post("/")
    def push() -> tuple[str, int]:
        message = request.get_json()["message"]
        attributes = message.get("attributes", {})
        key = attributes.get("idempotency_key") or message["messageId"]
        if key in seen:
            return "", 204
        seen.add(key)
        envelope = json.loads(base64.b64decode(message["data"]))
        dry_run = attributes.get("dry_run") == "true"
        result = fake_result(envelope["intent"], envelope["params"], key, dry_run)
        kind = "succeeded" if result is not None else "rejected"
        data = {"intent": envelope["intent"], "idempotency_key": key, "trading_mode": "paper"}
        if result is not None:
            data["result"] = result
        else:
            data["error"] = {"code": "invalid", "message": "rejected", "retryable": False}
        attrs = {
            "ce-id": f"id-{key}",
            "ce-type": f"io.github.ibcloudrun.intent.{kind}",
            "ce-source": "//stand-in",
            "ce-subject": envelope["intent"],
            "ce-specversion": "1.0",
            "ce-time": "2026-01-01T00:00:00Z",
        }
        publisher.publish(topic, json.dumps(data).encode(), **attrs).result(timeout=10)
        return "", 204

    return app


# What the stand-ins trade: (leg id, symbol, quantity, price), as ibsim's default scenario would.
SPY_LEG = ("alloc-756733", "SPY", 124.0, 598.37)
TLT_LEG = ("alloc-15547841", "TLT", 532.0, 93.25)
CLOSE_LEG = ("close-15547841", "TLT", 732.0, 93.05)


def fake_result(
    intent: str, params: dict[str, Any], key: str, dry_run: bool = False, status: str = "Filled"
) -> dict[str, Any] | None:
    """A stand-in's result for one of the demo's intents, or None to reject it.

    Args:
        intent: The intent name.
        params: Its params.
        key: The idempotency key (it goes into the orderRefs).
        dry_run: The message's dry_run attribute.
        status: The status every order leg reports.
    """
    if intent == "summary" and isinstance(params.get("sections", []), list):
        return {"net_liquidation": 1000000}
    if intent == "place_order":
        return {"legs": [_leg(key, ("order", "SPY", float(params["quantity"]), 600.0), status)]}
    if intent == "allocation" and dry_run:
        return {"dry_run": True, "legs": [_planned(leg) for leg in (SPY_LEG, TLT_LEG)]}
    if intent == "allocation":
        legs = [_leg(key, leg, status, {"fixed_weights": leg[2]}) for leg in (SPY_LEG, TLT_LEG)]
        return {"legs": legs, "booked": 2}
    if intent == "trade_reconciliation":
        return _reconciliation()
    if intent == "close_all":
        return {"cancelled": [], "legs": [_leg(key, CLOSE_LEG, status)]}
    return None


def _leg(
    key: str,
    leg: tuple[str, str, float, float],
    status: str,
    strategies: dict[str, float] | None = None,
) -> dict[str, Any]:
    leg_id, symbol, quantity, price = leg
    sent = {"leg_id": leg_id, "order_ref": f"ibw:{key}:{leg_id}", "status": status}
    sent.update(filled=quantity, avg_price=price, commission=0.35, contract={"symbol": symbol})
    return {**sent, "strategies": strategies} if strategies is not None else sent


def _planned(leg: tuple[str, str, float, float]) -> dict[str, Any]:
    leg_id, symbol, quantity, price = leg
    order = {"action": "BUY", "quantity": quantity, "order_type": "LMT", "limit_price": price}
    return {"id": leg_id, "contract": {"symbol": symbol}, "order": order, "price": price}


def _reconciliation() -> dict[str, Any]:
    row = {"strategy": "fixed_weights", "con_id": 756733, "symbol": "SPY", "position": 124.0}
    difference = {"con_id": 756733, "symbol": "SPY", "ours": 124.0, "broker": 234.0}
    return {
        "booked": 0,
        "blotter": [{**row, "realized_pnl": 0.0, "commission": 0.43}],
        "differences": [{**difference, "unattributed": 110.0}],
    }


def _listen(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def _serve_forever(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        conn.close()


def _on_term_record(path: str, name: str) -> None:
    def handler(signum: int, frame: object) -> None:
        with Path(path).open("a") as f:
            f.write(name + "\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> None:
    """`standins.py MODE [ARGS]`; MODE: ibsim, stubborn, record NAME FILE, exit, family."""
    mode = argv[0]
    if mode == "ibsim":
        # argv: serve --port 0 --control-port N [--clock-start ISO] --scenario NAME|PATH (the
        # real CLI's arguments)
        print("argv " + " ".join(argv[1:]), flush=True)
        sock = _listen(0)
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        # The real one logs this (stderr, same pipe) before its control endpoint is up; only
        # the bare stdout line below means ready.
        print(f"2026-01-01 00:00:00,000 ibsim.server ibsim listening on {address}", flush=True)
        time.sleep(0.5)
        control = _listen(int(argv[argv.index("--control-port") + 1]))
        threading.Thread(target=_serve_forever, args=(control,), daemon=True).start()
        print(f"ibsim listening on {address}", flush=True)
        _serve_forever(sock)
    elif mode == "stubborn":  # ignores SIGTERM: needs SIGKILL
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(600)
    elif mode == "record":  # writes its name to FILE on SIGTERM (stop order)
        _on_term_record(argv[2], argv[1])
        print("ready", flush=True)
        time.sleep(600)
    elif mode == "exit":  # fails during start-up
        print("boom: cannot start", flush=True)
        sys.exit(3)
    elif mode == "family":  # leader exits on SIGTERM, its child ignores it (like gcloud + JVM)
        import subprocess

        child = subprocess.Popen([sys.executable, __file__, "stubborn"], stdout=subprocess.PIPE)
        child.stdout.readline()  # the child ignores SIGTERM from here on
        print(f"ready child={child.pid}", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1:])
