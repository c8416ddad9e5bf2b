"""The callers of the security tests: one bearer token per kind of caller, made fresh for the
session and written as a tokens file (digests only) for services with AUTH_MODE=tokens."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from policykit.auth import token_digest
from tests.support import platform_env, start_service

# Caller: (organisation, roles). The draft's lead agency is registered as btnmt, the pre-2025
# id of bnnmt: the owner speaks for it as its successor.
CALLERS = {
    "agency": ("bnnmt", ["drafting-agency"]),
    "other-agency": ("byt", ["drafting-agency"]),
    "owner": ("vtv", ["communication"]),                # owns a press-commission task
    "other-owner": ("baochinhphu", ["communication"]),  # owns one of its own, not that one
    "commissioner": ("bnnmt.communication", ["communication"]),
    "spokesperson": ("bnnmt.spokesperson", ["communication", "spokesperson"]),
    "other-spokesperson": ("byt.spokesperson", ["communication", "spokesperson"]),
    "portal": ("vpcp.portal", ["portal"]),
    "gazette": ("vpcp", ["gazette"]),
    "operator": ("ops", ["operator"]),
}
TOKENS = {caller: secrets.token_urlsafe(24) for caller in CALLERS}


def write_tokens_file(path: Path) -> Path:
    entries = [{"sha256": token_digest(TOKENS[caller]), "org": org, "roles": roles}
               for caller, (org, roles) in CALLERS.items()]
    path.write_text(yaml.safe_dump({"tokens": entries}), "utf-8")
    return path


def bearer(caller: str) -> list[tuple[str, str]]:
    """The call metadata of the caller."""
    return [("authorization", f"Bearer {TOKENS[caller]}")]


def start_with_tokens(names: tuple[str, ...], folder: Path, bootstrap: str,
                      database_url: str) -> dict:
    """Starts the services by name with AUTH_MODE=tokens, knowing every caller's token."""
    env = platform_env(bootstrap, database_url, {
        "AUTH_MODE": "tokens", "AUTH_TOKENS_FILE": str(write_tokens_file(folder / "tokens.yaml"))})
    return {name: start_service(f"services.{name}", folder, env) for name in names}
