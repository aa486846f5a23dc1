"""Settings from the environment, validated at start, and the trading config from Firestore.

Environment names follow the earlier Cloud Run IB system where it had one (peer-systems.md);
where ours differ both are accepted (see the README's configuration table).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import ConfigInvalid, StoreUnavailable, describe
from worker.names import names, pubsub_name
from worker.risk import RiskConfig

log = logging.getLogger(__name__)

DEFAULT_IB_PORT = {"paper": 4002, "live": 4001}


def _env(*names_: str) -> AliasChoices:
    return AliasChoices(*names_)


class Settings(BaseSettings):
    """Worker settings. Every field is an environment variable (aliases in ``validation_alias``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    project_id: str = Field(
        "local-project", validation_alias=_env("PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")
    )
    trading_mode: Literal["paper", "live"] = Field("paper", validation_alias="TRADING_MODE")
    allow_live_trading: bool = Field(False, validation_alias="ALLOW_LIVE_TRADING")
    deployment: str = Field("", validation_alias=_env("DEPLOYMENT", "K_SERVICE"))
    ib_host: str = Field("127.0.0.1", validation_alias="IB_HOST")
    ib_port: int = Field(0, ge=0, le=65535, validation_alias=_env("IB_PORT", "TWS_PORT"))
    ib_client_id: int = Field(1, ge=0, le=2**31 - 1, validation_alias="IB_CLIENT_ID")
    ib_accounts: str = Field("", validation_alias=_env("IB_ACCOUNTS", "IB_ACCOUNT"))
    ib_connect_timeout: float = Field(10.0, gt=0, validation_alias="IB_CONNECT_TIMEOUT")
    results_topic: str = Field("", validation_alias="RESULTS_TOPIC")
    firestore_database: str = Field("(default)", validation_alias="FIRESTORE_DATABASE")
    runs_collection: str = Field(
        names()["firestore"]["runs_collection"], validation_alias="RUNS_COLLECTION"
    )
    config_collection: str = Field(
        names()["firestore"]["config_collection"], validation_alias="CONFIG_COLLECTION"
    )
    bq_dataset: str = Field("", validation_alias="BQ_DATASET")  # empty: no BigQuery rows
    bigquery_api_endpoint: str = Field("", validation_alias="BIGQUERY_API_ENDPOINT")
    lease_seconds: float = Field(90.0, ge=5, le=540, validation_alias="LEASE_SECONDS")
    intent_timeout_seconds: float = Field(
        60.0, gt=0, le=540, validation_alias="INTENT_TIMEOUT_SECONDS"
    )
    order_ack_seconds: float = Field(10.0, gt=0, le=120, validation_alias="ORDER_ACK_SECONDS")
    order_search_seconds: float = Field(10.0, gt=0, le=120, validation_alias="ORDER_SEARCH_SECONDS")
    retention_days: float = Field(7.0, gt=0, validation_alias="RETENTION_DAYS")
    config_cache_seconds: float = Field(15.0, ge=0, validation_alias="CONFIG_CACHE_SECONDS")
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias="MAX_BODY_BYTES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.deployment:
            self.deployment = names()["cloud_run"]["service"].format(mode=self.trading_mode)
        if not self.ib_port:
            self.ib_port = DEFAULT_IB_PORT[self.trading_mode]
        if not self.results_topic:
            self.results_topic = pubsub_name("results_topic", self.trading_mode)
        return self

    @property
    def accounts(self) -> frozenset[str]:
        """Accounts this deployment serves; empty means "whatever the gateway manages"."""
        return frozenset(a.strip() for a in self.ib_accounts.split(",") if a.strip())

    @property
    def source(self) -> str:
        """CloudEvent ``source`` of every outcome this deployment publishes."""
        return f"//ib-cloudrun/projects/{self.project_id}/deployments/{self.deployment}"


class SettingsError(SystemExit):
    """Raised at start when the environment is invalid; the message names each bad variable."""


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the settings, failing fast with one readable message.

    Args:
        environ: mapping to read instead of ``os.environ`` (tests).
    """
    try:
        if environ is None:
            return Settings()
        return Settings(**{k: v for k, v in environ.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid worker configuration: {problems}") from None


class TradingConfig:
    """Trading config merged from Firestore ``config/common`` and ``config/<mode>``.

    Re-read after ``ttl`` seconds so an operator's change (e.g. the ``tradingEnabled`` kill
    switch) takes effect within seconds, never frozen for the instance's life.
    """

    def __init__(self, loader: Callable[[], dict[str, Any]], ttl: float) -> None:
        self._loader = loader
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: dict[str, Any] = {}
        self._loaded_at = float("-inf")

    def get(self) -> dict[str, Any]:
        """The current merged config (``<mode>`` keys override ``common`` ones)."""
        with self._lock:
            if time.monotonic() - self._loaded_at >= self._ttl:
                self._value = self._loader()
                self._loaded_at = time.monotonic()
            return self._value


def firestore_config_loader(client: Any, settings: Settings) -> Callable[[], dict[str, Any]]:
    """A loader reading ``config/common`` then ``config/<mode>`` from Firestore."""
    from google.api_core import exceptions as gexc

    collection = client.collection(settings.config_collection)
    common_id = names()["firestore"]["config_common_document"]

    def load() -> dict[str, Any]:
        merged: dict[str, Any] = {}
        try:
            for doc_id in (common_id, settings.trading_mode):
                merged.update(collection.document(doc_id).get(timeout=5).to_dict() or {})
        except gexc.GoogleAPICallError as exc:
            raise StoreUnavailable(f"trading config unreadable: {type(exc).__name__}") from exc
        return merged

    return load


class Exposure(BaseModel):
    """``exposure``: share of NetLiquidation traded overall, and each strategy's part of it."""

    model_config = ConfigDict(extra="forbid")

    overall: float = Field(0.0, ge=0, le=10)
    strategies: dict[str, float] = Field(default_factory=dict)


class TradingRules(BaseModel):
    """The merged trading config. The earlier system's camelCase keys keep working; ours add
    ``risk`` (``worker/risk.py``) and ``strategies.<id>`` settings. Unknown keys are logged
    once, never fatal; nothing here is ever written back (deploys do not overwrite it)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    account: str | None = None
    trading_enabled: bool = Field(True, alias="tradingEnabled")
    exposure: Exposure = Field(default_factory=Exposure)
    market_data_type: int = Field(1, ge=1, le=4, alias="marketDataType")
    adaptive_priority: Literal["Urgent", "Normal", "Patient"] = Field(
        "Normal", alias="adaptivePriority"
    )
    cash_balance_threshold: float = Field(0.0, ge=0, alias="cashBalanceThresholdInBaseCurrency")
    # The earlier system's retry guard; the idempotency record replaces it (accepted, unused).
    retry_check_minutes: float | None = Field(None, alias="retryCheckMinutes")
    order_style: Literal["limit", "adaptive"] = Field("limit", alias="orderStyle")
    risk: RiskConfig = Field(default_factory=RiskConfig)
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    universe: list[str | dict[str, Any]] = Field(
        default_factory=list, description="collect_market_data's instruments: symbols or specs"
    )


_REPORTED_UNKNOWN: set[str] = set()


def trading_rules(raw: dict[str, Any]) -> TradingRules:
    """Validate the merged config (ConfigInvalid names what is wrong)."""
    try:
        rules = TradingRules.model_validate(raw)
    except ValidationError as exc:
        raise ConfigInvalid(f"trading config invalid: {describe(exc)}") from None
    for key in sorted(set(rules.model_extra or {}) - _REPORTED_UNKNOWN):
        _REPORTED_UNKNOWN.add(key)
        log.warning("trading config key %r is not known to this worker; ignored", key)
    return rules
