"""ib_async / ib_insync connect to ibsim with full synchronisation."""

from __future__ import annotations

import pytest

from tests.ibsim import iblib

pytestmark = pytest.mark.ib_client


def test_connect_full_sync(ib):
    assert ib.isConnected()
    assert ib.managedAccounts() == ["DU1234567"]
    symbols = sorted(p.contract.symbol for p in ib.positions())
    assert symbols == ["AAPL", "SPY", "TLT"]
    tags = {v.tag for v in ib.accountValues()}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "CashBalance"} <= tags
    assert len(ib.portfolio()) == 3
    assert iblib.NAME in ("ib_async", "ib_insync")


def test_two_account_scenario(tmp_path, clock):
    import ibsim

    with ibsim.run_in_thread("two_accounts", state_dir=tmp_path, clock=clock) as sim:
        ib = iblib.IB()
        try:
            iblib.connect(ib, sim.host, sim.port, client_id=3)
            accounts = ib.managedAccounts()
            assert len(accounts) == 2
            summary_accounts = {row.account for row in ib.accountSummary()}
            assert set(accounts) <= summary_accounts
            assert {p.account for p in ib.positions()} <= set(accounts)
        finally:
            ib.disconnect()


def test_a_client_older_than_176_is_refused_with_an_explicit_error(sim):
    """As ib_insync 0.9.70 (v142..163) would be: told why, not sent layouts it misreads."""
    ib = iblib.IB()
    ib.client.MaxClientVersion = 163
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *rest: errors.append((code, text))
    with pytest.raises((ConnectionError, TimeoutError)):
        iblib.connect(ib, sim.host, sim.port, timeout=0.5)  # the library waits that long
    ib.disconnect()
    [(code, text)] = errors
    assert code == 502
    assert "176" in text
    assert "v157..163" in text


def test_connect_with_the_pace_api_option(sim):
    ib = iblib.IB()
    ib.client.setConnectOptions("+PACEAPI")
    try:
        iblib.connect(ib, sim.host, sim.port, client_id=7)
        assert ib.reqCurrentTime()
        assert sim.call(lambda: sim.sim.clients[7].paced)
    finally:
        ib.disconnect()
