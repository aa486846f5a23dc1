"""ibsim: a local paper-trading gateway that speaks the real TWS API socket protocol.

In-process use (tests)::

    import ibsim
    with ibsim.run_in_thread(scenario="default", port=0) as sim:
        ib.connect(sim.host, sim.port, clientId=1)
        sim.faults.drop_all()

or, on an existing event loop, ``sim = ibsim.Simulator(...); await sim.start(); await sim.stop()``.
From a shell: ``ibsim serve`` and ``ibsim fault MODE ...`` (see ``ibsim.cli``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ibsim.server import Simulator
    from ibsim.threaded import ThreadedSimulator, run_in_thread

__all__ = ["Simulator", "ThreadedSimulator", "run_in_thread"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `import ibsim.model` (or .market) does not pull in the server.
    if name == "Simulator":
        from ibsim.server import Simulator

        return Simulator
    if name in __all__:
        from ibsim import threaded

        return getattr(threaded, name)
    raise AttributeError(f"module 'ibsim' has no attribute {name!r}")
