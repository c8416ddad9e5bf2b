"""Where policyctl finds the platform: one gRPC target per service and the Kafka bootstrap
servers. The defaults are the local platform's (`make up`, deploy/local/ports.env — a test
keeps them equal); POLICYCTL_<SERVICE>_TARGET, KAFKA_BOOTSTRAP_SERVERS or the command-line
options override them."""

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


def target_variable(service: str) -> str:
    return f"POLICYCTL_{service.upper()}_TARGET"


@dataclass
class Settings:
    targets: dict[str, str] = field(default_factory=dict)
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    timeout: float = 10.0

    @classmethod
    def from_environment(cls, overrides: dict[str, str], bootstrap_servers: str | None,
                         timeout: float) -> "Settings":
        targets = {service: overrides.get(service)
                   or os.environ.get(target_variable(service)) or default
                   for service, default in DEFAULT_TARGETS.items()}
        return cls(targets, bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                   or DEFAULT_BOOTSTRAP_SERVERS, timeout)
