"""Configuration from the environment, validated at start; errors name the variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from policykit.kafka_security import KafkaSecurity


class ConfigError(ValueError):
    """A missing or invalid environment variable; the message names it."""


def env_str(name: str, default: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """Returns the variable's value, or the default; fails when neither is there."""
    value = env.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} must be set")
    return value


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int = 2**31 - 1,
            env: Mapping[str, str] = os.environ) -> int:
    """Returns the variable as an integer within [minimum, maximum]."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class ServiceSettings:
    """What every service needs to find its infrastructure and expose itself."""

    service_name: str
    kafka_bootstrap_servers: str
    database_url: str
    grpc_port: int
    metrics_port: int
    log_level: str
    outbox_poll_interval_ms: int
    shutdown_grace_seconds: int
    kafka_security: KafkaSecurity

    @classmethod
    def from_env(cls, service_name: str, env: Mapping[str, str] = os.environ) -> "ServiceSettings":
        """Reads KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, GRPC_PORT, METRICS_PORT, LOG_LEVEL,
        OUTBOX_POLL_INTERVAL_MS, SHUTDOWN_GRACE_SECONDS and the Kafka security variables
        (policykit.kafka_security)."""
        # Imported here: kafka_security builds on this module's ConfigError and env_str.
        from policykit.kafka_security import KafkaSecurity

        database_url = env_str("DATABASE_URL", env=env)
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
        log_level = env_str("LOG_LEVEL", "INFO", env=env).upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        return cls(
            service_name=service_name,
            kafka_bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS", env=env),
            database_url=database_url,
            grpc_port=env_int("GRPC_PORT", 0, maximum=65535, env=env),
            metrics_port=env_int("METRICS_PORT", 0, maximum=65535, env=env),
            log_level=log_level,
            outbox_poll_interval_ms=env_int("OUTBOX_POLL_INTERVAL_MS", 100, minimum=1, env=env),
            shutdown_grace_seconds=env_int("SHUTDOWN_GRACE_SECONDS", 10, minimum=0, env=env),
            kafka_security=KafkaSecurity.from_env(env),
        )
