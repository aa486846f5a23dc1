"""The loopback control endpoint of ``ibsim serve``: fault injection from another process.

Protocol: one JSON object per line, ``{"mode": "delay-end", "args": ["positionEnd", "2"]}``,
answered by one line ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
Besides the fault modes (see :meth:`ibsim.faults.Faults.modes`) there is ``status``.
It always binds loopback: anyone who can reach it can disrupt the gateway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ibsim.server import Simulator

log = logging.getLogger("ibsim.control")
LOOPBACK = "127.0.0.1"
MAX_REQUEST = 64 * 1024


async def start_control(sim: Simulator, port: int = 0) -> asyncio.Server:
    """Serve the control endpoint for ``sim`` on 127.0.0.1:``port`` (0: any free port)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            reply = execute(sim, line[:MAX_REQUEST])
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, LOOPBACK, port)


def execute(sim: Simulator, line: bytes) -> dict[str, Any]:
    """Run one control request and describe the outcome (never raises)."""
    try:
        request = json.loads(line)
        mode = str(request["mode"])
        args = [str(a) for a in request.get("args", [])]
    except (ValueError, KeyError, TypeError) as exc:
        return {"ok": False, "error": f"bad request: {exc}"}
    if mode == "status":
        return {"ok": True, "result": status(sim)}
    try:
        result = sim.faults.apply(mode, args)
    except (ValueError, TypeError, LookupError) as exc:
        return {"ok": False, "error": str(exc)}
    log.info("fault %s %s applied", mode, " ".join(args))
    return {"ok": True, "result": None if result is None else str(result)}


def status(sim: Simulator) -> dict[str, Any]:
    """What is connected and which switches are set."""
    return {
        "api": f"{sim.host}:{sim.port}",
        "clients": sorted(sim.clients),
        "locked_client_ids": sorted(sim.locked_ids),
        "not_logged_in": sim.faults.not_logged_in,
        "clock": sim.clock.now().isoformat(),
        "accounts": sim.broker.accounts,
    }


def send(address: str, mode: str, args: list[str], timeout: float = 10.0) -> dict[str, Any]:
    """Client side: send one request to ``HOST:PORT`` and return the decoded reply."""
    import socket

    host, _, port = address.rpartition(":")
    with socket.create_connection((host or LOOPBACK, int(port)), timeout=timeout) as sock:
        sock.sendall(json.dumps({"mode": mode, "args": args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data or b'{"ok": false, "error": "no reply"}')
