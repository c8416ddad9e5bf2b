"""Kafka for the events and dead-letters commands: client settings from the global options
and the environment, and the broker's failures as messages and exit codes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from kafka.errors import AuthorizationError, KafkaConnectionError, KafkaTimeoutError

from policykit.config import ConfigError
from policykit.kafka_security import KafkaSecurity
from policykit.topic_reader import UnknownTopic
from policyctl import errors
from policyctl.session import Session

# kafka-python refuses a request timeout not above its fetch wait (500 ms by default).
MIN_REQUEST_TIMEOUT_MS = 1000


def client_settings(session: Session) -> dict[str, Any]:
    """Consumer and producer settings: --timeout bounds the wait for an unreachable broker.
    The security settings come from the variables the services read (KAFKA_SECURITY_PROTOCOL,
    KAFKA_SASL_*, KAFKA_SSL_*), so policyctl run in a service's pod connects as that service."""
    try:
        security = KafkaSecurity.from_env()
    except ConfigError as error:
        raise errors.CommandError(str(error), errors.USAGE) from error
    timeout_ms = int(session.settings.timeout * 1000)
    return dict(client_id="policyctl", bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=max(timeout_ms, MIN_REQUEST_TIMEOUT_MS), security=security)


@contextmanager
def kafka_errors(session: Session) -> Iterator[None]:
    """Turns a missing topic, a refused operation and an unreachable broker into errors with
    their exit codes."""
    try:
        yield
    except UnknownTopic as error:
        raise errors.CommandError(str(error), errors.NOT_FOUND, "NOT_FOUND") from error
    except AuthorizationError as error:
        raise errors.CommandError(
            f"Kafka refused it ({error}): the user in $KAFKA_SASL_USERNAME has no ACL for it",
            errors.DENIED, "PERMISSION_DENIED") from error
    except (KafkaTimeoutError, KafkaConnectionError) as error:
        # kafka-python retries refused credentials like an unreachable broker, until the
        # timeout; the warnings it logged before say which it was.
        raise errors.CommandError(
            f"Kafka at {session.settings.bootstrap_servers} did not answer ({error}); check "
            f"--bootstrap-servers or $KAFKA_BOOTSTRAP_SERVERS, and the credentials in "
            f"$KAFKA_SASL_USERNAME and $KAFKA_SASL_PASSWORD if the listener authenticates",
            errors.UNAVAILABLE, "UNAVAILABLE") from error
