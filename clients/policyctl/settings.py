"""Where policyctl finds the platform and who it calls as: one gRPC target per service, the
Kafka bootstrap servers, a bearer token and TLS files. The defaults are the local platform's
(`make up`, deploy/local/ports.env — a test keeps them equal); POLICYCTL_<SERVICE>_TARGET,
KAFKA_BOOTSTRAP_SERVERS or the command-line options override them. For services with
AUTH_MODE=mtls, POLICYCTL_TLS_CA names the CA of their certificates and POLICYCTL_TLS_CERT /
POLICYCTL_TLS_KEY the caller's client certificate and key."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_TARGETS = {
    "drafting": "127.0.0.1:50051",
    "communication": "127.0.0.1:50052",
    "consultation": "127.0.0.1:50053",
    "publication": "127.0.0.1:50054",
    "evaluation": "127.0.0.1:50055",
}
DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:19092"
TLS_VARIABLES = ("POLICYCTL_TLS_CA", "POLICYCTL_TLS_CERT", "POLICYCTL_TLS_KEY")


def target_variable(service: str) -> str:
    return f"POLICYCTL_{service.upper()}_TARGET"


@dataclass
class Settings:
    targets: dict[str, str] = field(default_factory=dict)
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    timeout: float = 10.0
    # Sent as `authorization: Bearer <token>` to services with AUTH_MODE=tokens.
    token: str | None = None
    # The CA file, client certificate and key (TLS_VARIABLES); None for plaintext.
    tls_files: tuple[str, str | None, str | None] | None = None

    @classmethod
    def from_environment(cls, overrides: dict[str, str], bootstrap_servers: str | None,
                         timeout: float, token: str | None = None) -> "Settings":
        targets = {service: overrides.get(service)
                   or os.environ.get(target_variable(service)) or default
                   for service, default in DEFAULT_TARGETS.items()}
        ca, cert, key = (os.environ.get(name) or None for name in TLS_VARIABLES)
        return cls(targets, bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                   or DEFAULT_BOOTSTRAP_SERVERS, timeout, token,
                   (ca, cert, key) if ca else None)
