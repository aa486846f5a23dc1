"""Admission: one delivery becomes an admitted intent, or a permanent refusal.

Everything that can be decided without the idempotency record happens here, before any claim:
the account check, the intent registry, size limits, params validation, the direct-call key
rule, ``not_after`` and the risk gate's pre-checks (live opt-in, kill switch). What comes out
is typed (``Admitted``); what is refused is a ``Permanent`` error whose outcome the pipeline
records and publishes, or ``NotServed`` for another deployment's account (acked silently).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from worker.config import Settings
from worker.edge import Delivery
from worker.envelope import digest
from worker.errors import (
    BadInput,
    GatewayNotReady,
    InvalidParams,
    NotAfterPassed,
    RiskRefused,
    UnknownIntent,
    describe,
)
from worker.intents import REGISTRY, IntentSpec
from worker.names import canonical_intent
from worker.runs import fingerprint

MAX_PARAMS_BYTES = 64 * 1024  # params are stored in the record (Firestore docs <= 1 MiB)


class NotServed(Exception):
    """The delivery names an account this deployment does not serve (a verdict, not an
    error: acked without a record)."""


@dataclass(frozen=True)
class Admitted:
    """A delivery that may run: its intent, validated params and identity."""

    delivery: Delivery
    spec: IntentSpec
    params: BaseModel
    fingerprint: str

    @property
    def key(self) -> str:
        return self.delivery.key


class Admission:
    """Judges deliveries against the registry, the settings and the trading config."""

    def __init__(
        self,
        settings: Settings,
        trading_config: Callable[[], dict[str, Any]],
        gateway_accounts: Callable[[], list[str] | None],
    ) -> None:
        self._settings = settings
        self._config = trading_config
        self._gateway_accounts = gateway_accounts  # None while the gateway is not ready

    def admit(self, d: Delivery, received_at: datetime) -> Admitted:
        """The admitted intent.

        Raises:
            NotServed: another deployment's account (ack, no record, no outcome).
            Permanent: refused for good (the outcome says why).
            GatewayNotReady: the served accounts cannot be known yet (retry).
        """
        if d.error is not None:
            raise d.error
        if d.envelope is None:  # decode() sets exactly one of envelope and error
            raise BadInput("delivery has no intent envelope")
        if d.options.account and not self._serves(d.options.account):
            raise NotServed(d.options.account)
        spec = _spec(d.envelope.intent)
        params = _params(spec, d.envelope.params)
        if spec.places_orders and d.route == "direct" and not d.options.idempotency_key:
            raise BadInput("intents that place orders need an Idempotency-Key header")
        if d.options.not_after and received_at > d.options.not_after:
            raise NotAfterPassed(f"not_after {d.options.not_after.isoformat()} has passed")
        self._risk_pre_checks(spec)
        return Admitted(d, spec, params, fingerprint_of(d))

    def account_for(self, requested: str | None) -> str:
        """The account a run acts for: the requested one, or the only one served."""
        if requested:
            return requested
        served = sorted(self._settings.accounts) or self._gateway_accounts()
        if served is None:
            raise GatewayNotReady("IB gateway session is not ready")
        if len(served) == 1:
            return served[0]
        raise InvalidParams("this deployment serves several accounts: set the account attribute")

    def _serves(self, account: str) -> bool:
        if self._settings.accounts:
            return account in self._settings.accounts
        served = self._gateway_accounts()
        if served is None:
            raise GatewayNotReady("cannot tell which accounts are served before the gateway is up")
        return account in served

    def _risk_pre_checks(self, spec: IntentSpec) -> None:
        if not spec.places_orders:
            return  # read-only intents run even with the kill switch on
        if self._settings.trading_mode == "live" and not self._settings.allow_live_trading:
            raise RiskRefused("live trading is not enabled (set ALLOW_LIVE_TRADING=true)")
        if spec.reduces_risk:
            return  # the kill switch blocks new exposure, never its unwinding
        if self._config().get("tradingEnabled", True) is False:
            raise RiskRefused("trading is disabled by config tradingEnabled=false")


def fingerprint_of(d: Delivery) -> str:
    """The fingerprint of any delivery, understood or not."""
    if d.envelope is None:
        return digest("undecodable", d.route, d.preview)
    name = canonical_intent(d.envelope.intent)  # "close-all" and "close_all" are the same intent
    return fingerprint(name, d.envelope.params, d.options.account, d.options.dry_run)


def _spec(name: str) -> IntentSpec:
    spec = REGISTRY.get(canonical_intent(name))
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownIntent(f"unknown intent {name[:64]!r}; known: {known}")
    return spec


def _params(spec: IntentSpec, raw: dict[str, Any]) -> BaseModel:
    if len(json.dumps(raw)) > MAX_PARAMS_BYTES:
        raise InvalidParams(f"params exceed {MAX_PARAMS_BYTES} bytes")
    try:
        return spec.params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParams(f"invalid params: {describe(exc)}") from None
