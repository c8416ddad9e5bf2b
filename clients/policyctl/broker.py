"""Kafka for the events and dead-letters commands: client settings from the global options,
and the broker's failures as messages and exit codes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from policykit.topic_reader import UnknownTopic
from policyctl import errors
from policyctl.session import Session

# kafka-python refuses a request timeout not above its fetch wait (500 ms by default).
MIN_REQUEST_TIMEOUT_MS = 1000


def client_settings(session: Session) -> dict[str, Any]:
    """Consumer and producer settings: --timeout bounds the wait for an unreachable broker."""
    timeout_ms = int(session.settings.timeout * 1000)
    return dict(client_id="policyctl", bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=max(timeout_ms, MIN_REQUEST_TIMEOUT_MS))


@contextmanager
def kafka_errors(session: Session) -> Iterator[None]:
    """Turns a missing topic and an unreachable broker into errors with their exit codes."""
    try:
        yield
    except UnknownTopic as error:
        raise errors.CommandError(str(error), errors.NOT_FOUND, "NOT_FOUND") from error
    except (KafkaTimeoutError, KafkaConnectionError) as error:
        raise errors.CommandError(
            f"Kafka at {session.settings.bootstrap_servers} did not answer ({error}); check "
            f"--bootstrap-servers or $KAFKA_BOOTSTRAP_SERVERS", errors.UNAVAILABLE,
            "UNAVAILABLE") from error
