"""Who is calling a gRPC API, and whether they may.

AUTH_MODE chooses how callers prove who they are (validated at start, errors name the variable):

| AUTH_MODE | the caller presents | settings |
|---|---|---|
| tokens | `authorization: Bearer <token>` metadata | AUTH_TOKENS_FILE: YAML of the SHA-256 digests of the tokens, each with its organisation and roles; re-read when it changes |
| mtls | a TLS client certificate signed by GRPC_TLS_CLIENT_CA whose SAN URIs are `spiffe://policy.gov.vn/org/<org>/role/<role>` | GRPC_TLS_CERT / GRPC_TLS_KEY: the server's certificate and key, re-read when they change; GRPC_HEALTH_PORT: a plaintext port serving only grpc.health.v1, for probes that have no client certificate |
| none | nothing: every call is accepted unchecked | for tests of other concerns only; logged loudly at start |

GRPC_HEALTH_PORT may be set in any mode. Health and reflection never need credentials (probes,
grpcurl listing); every other method has a Rule naming the roles that may call it (one table
per service, `services/<name>/access.py`) and is refused UNAUTHENTICATED without valid
credentials, PERMISSION_DENIED without one of the roles. Servicers check ownership where they
read the row (`require`, `speaks_for`, `is_org`) on the principal of the call
(`current_principal`). docs/security.md has the whole matrix.

`python -m policykit.auth issue --org ORG --role ROLE…` makes a token and its tokens-file entry."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping, Protocol

import grpc
import yaml
from google.protobuf import descriptor_pool

from policykit.config import ConfigError, env_int, env_str
from policykit.errors import PermissionDenied, Unauthenticated
from policykit.reference import UnknownReference
from policykit.reference import default as reference_data

log = logging.getLogger(__name__)

# The roles an organisation may hold.
DRAFTING_AGENCY = "drafting-agency"  # a ministry's drafting system: its drafts, their comments
COMMUNICATION = "communication"      # owns communication tasks: offices, press agencies, communes
SPOKESPERSON = "spokesperson"        # `<ministry>.spokesperson`: releases on its regulations
PORTAL = "portal"                    # forwards citizens' comments
GAZETTE = "gazette"                  # the Government Office's Official Gazette (vpcp)
OPERATOR = "operator"                # the ops team: reads, never changes others' data
ROLES = frozenset({DRAFTING_AGENCY, COMMUNICATION, SPOKESPERSON, PORTAL, GAZETTE, OPERATOR})

MODES = ("tokens", "mtls", "none")
TRUST_DOMAIN = "policy.gov.vn"
_SPIFFE_ID = re.compile(rf"^spiffe://{re.escape(TRUST_DOMAIN)}/org/([^/]+)/role/([^/]+)$")
_ORG = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)?$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Services whose methods need no credentials: Kubernetes probes, and listing the APIs.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    """Who makes a call: an organisation id (`bnnmt`, `bnnmt.communication`, `vtv`), its roles
    and how it authenticated ("token", "mtls", or "none" for an unchecked call)."""

    org: str
    roles: frozenset[str]
    authenticated_by: str

    @property
    def unit(self) -> str:
        """The ministry, province or press agency the organisation belongs to."""
        return self.org.partition(".")[0]

    @property
    def office(self) -> str:
        """The office within the unit (`communication`, `spokesperson`, …); empty for the unit."""
        return self.org.partition(".")[2]

    @property
    def checked(self) -> bool:
        return self.authenticated_by != "none"


@dataclass(frozen=True)
class Call:
    """The gRPC call being handled, for the audit log: its method path, its request id (the
    client's `x-request-id`, or one made for it) and its request's idempotency key, if any."""

    method: str
    request_id: str
    idempotency_key: str = ""


UNCHECKED = Principal("", frozenset(), "none")
_CURRENT: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")
_CALL: contextvars.ContextVar[Call | None] = contextvars.ContextVar("call", default=None)


def current_principal() -> Principal:
    """The caller of the gRPC call being handled; outside of one this is a bug (LookupError)."""
    return _CURRENT.get()


def current_call() -> Call | None:
    """The gRPC call being handled; None outside of one, or where a test set no call."""
    return _CALL.get()


@contextlib.contextmanager
def calling_as(principal: Principal, call: Call | None = None) -> Iterator[None]:
    """Makes `principal` the caller, in `call`, for the code inside."""
    token, call_token = _CURRENT.set(principal), _CALL.set(call)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        _CALL.reset(call_token)


def require(allowed: bool, action: str) -> None:
    """Raises PermissionDenied saying the caller may not `action`, unless `allowed` or the call
    is unchecked (AUTH_MODE=none)."""
    principal = current_principal()
    if principal.checked and not allowed:
        raise PermissionDenied(f"{principal.org} may not {action}")


def is_org(*org_ids: str) -> bool:
    """Tells whether the caller is one of the organisations."""
    return current_principal().org in org_ids


def has_role(role: str) -> bool:
    return role in current_principal().roles


def speaks_for(agency_id: str, office: str = "") -> bool:
    """Tells whether the caller is the agency's `office` (the agency itself when empty), where
    the agency may be recorded under a pre-merger id: `bnnmt` speaks for drafts of `btnmt`."""
    principal = current_principal()
    if principal.office != office:
        return False
    if principal.unit == agency_id:
        return True
    try:
        today = datetime.now(timezone.utc).date()
        return reference_data().agency_on(agency_id, today).id == principal.unit
    except UnknownReference:
        return False


@dataclass(frozen=True)
class Rule:
    """Who may call a method: a principal holding one of `roles`, or any role when None.
    Ownership (which rows) is the servicer's to check."""

    roles: frozenset[str] | None

    def admits(self, principal: Principal) -> bool:
        return self.roles is None or bool(self.roles & principal.roles)


ANY_ROLE = Rule(None)


def only(*roles: str) -> Rule:
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    return Rule(frozenset(roles))


def rules_for(service_name: str, by_method: Mapping[str, Rule]) -> dict[str, Rule]:
    """A service's table keyed by gRPC method path (`/package.Service/Method`). It must name
    every method of the service, so a new method cannot go without a rule, and only methods
    with a unary response: the gate checks those."""
    service = descriptor_pool.Default().FindServiceByName(service_name)
    names = {method.name for method in service.methods}
    if set(by_method) != names:
        raise ValueError(f"{service_name}: rules for {sorted(set(by_method) - names)} that do "
                         f"not exist, none for {sorted(names - set(by_method))}")
    streaming = [m.name for m in service.methods if m.server_streaming]
    if streaming:
        raise ValueError(f"{service_name}: {streaming} stream responses, which the gate "
                         f"does not check")
    return {f"/{service_name}/{name}": rule for name, rule in by_method.items()}


class Authenticator(Protocol):
    def authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        """Returns the caller, or raises Unauthenticated."""


class NoAuthentication:
    def authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        return UNCHECKED


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> dict[str, Principal]:
    """Reads a tokens file: `tokens:` a list of {sha256, org, roles, note (optional)}; raises
    ConfigError naming the entry and field at fault."""
    where = f"AUTH_TOKENS_FILE: {path}"
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{where}: {error}") from None
    entries = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: must hold `tokens:`, a list")
    table: dict[str, Principal] = {}
    for n, entry in enumerate(entries):
        at = f"{where}: tokens[{n}]"
        if not isinstance(entry, dict) or set(entry) - {"sha256", "org", "roles", "note"}:
            raise ConfigError(f"{at}: must be a mapping of sha256, org, roles and note")
        digest, org, roles = (str(entry.get("sha256", "")).lower(), entry.get("org"),
                              entry.get("roles"))
        if not _DIGEST.match(digest):
            raise ConfigError(f"{at}.sha256: must be the 64 hex digits of the token's SHA-256")
        if digest in table:
            raise ConfigError(f"{at}.sha256: appears twice")
        if not isinstance(org, str) or not _ORG.match(org):
            raise ConfigError(f"{at}.org: must be an organisation id like bnnmt, "
                              f"bnnmt.communication or vtv")
        if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
            raise ConfigError(f"{at}.roles: must be a non-empty list of {sorted(ROLES)}")
        table[digest] = Principal(org, frozenset(roles), "token")
    return table


class TokenAuthenticator:
    """Bearer tokens looked up by their SHA-256 digest. The file is re-read when it changes, so
    removing an entry revokes its token without a restart; a broken edit keeps the last good
    table and is logged."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp = self._mtime()
        self._table = load_tokens(path)

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def _current_table(self) -> dict[str, Principal]:
        stamp = self._mtime()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._table = load_tokens(self.path)
                log.info("reloaded %d tokens from %s", len(self._table), self.path)
            except ConfigError as error:
                log.error("kept the previous tokens: %s", error)
        return self._table

    def authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        values = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
        if not values:
            raise Unauthenticated("send the metadata `authorization: Bearer <token>`")
        scheme, _, token = values[0].partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization metadata must be `Bearer <token>`")
        principal = self._current_table().get(token_digest(token.strip()))
        if principal is None:
            raise Unauthenticated("unknown or revoked token")
        return principal


class CertificateAuthenticator:
    """The identity in the client certificate that the TLS handshake already verified."""

    def authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        found = [_SPIFFE_ID.match(uri.decode())
                 for uri in context.auth_context().get("peer_uri", ())]
        identities = {(m.group(1), m.group(2)) for m in found if m}
        orgs = {org for org, _ in identities}
        if len(orgs) != 1:
            raise Unauthenticated(
                f"the client certificate must name one organisation in SAN URIs "
                f"spiffe://{TRUST_DOMAIN}/org/<org>/role/<role>; it names {len(orgs)}")
        return Principal(orgs.pop(), frozenset(role for _, role in identities), "mtls")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path


class _ReloadingCertificates:
    """Serves the certificate files as they are now: cert-manager renews them in place."""

    def __init__(self, files: TlsFiles):
        self.files = files
        self._stamp = self._mtimes()

    def _mtimes(self) -> tuple[int, ...]:
        return tuple(path.stat().st_mtime_ns for path in
                     (self.files.cert, self.files.key, self.files.client_ca))

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.files.key.read_bytes(), self.files.cert.read_bytes())],
            root_certificates=self.files.client_ca.read_bytes())

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: a new configuration when a file changed."""
        try:
            stamp = self._mtimes()
            if stamp == self._stamp:
                return None
            configuration = self.configuration()
        except OSError as error:  # mid-swap of a Secret volume: keep serving the last one
            log.warning("kept the previous TLS certificates: %s", error)
            return None
        self._stamp = stamp
        log.info("reloaded the TLS certificates")
        return configuration


@dataclass(frozen=True)
class AuthSettings:
    """How the gRPC server authenticates its callers; build it with from_env."""

    mode: str = "none"
    tokens_file: Path | None = None
    tls: TlsFiles | None = None
    health_port: int = 0  # 0: health only on the main port

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AuthSettings:
        """Reads AUTH_MODE and what it needs; raises ConfigError naming the variable."""
        mode = env.get("AUTH_MODE", "")
        if mode not in MODES:
            raise ConfigError(f"AUTH_MODE must be one of {', '.join(MODES)}, got {mode!r}")
        health_port = env_int("GRPC_HEALTH_PORT", 0, maximum=65535, env=env)
        if mode == "tokens":
            tokens_file = _file("AUTH_TOKENS_FILE", env)
            load_tokens(tokens_file)
            return cls(mode, tokens_file=tokens_file, health_port=health_port)
        if mode == "mtls":
            if not health_port:
                raise ConfigError("GRPC_HEALTH_PORT must be set with AUTH_MODE=mtls: probes "
                                  "cannot present a client certificate")
            tls = TlsFiles(*(_pem_file(name, env) for name in
                             ("GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA")))
            return cls(mode, tls=tls, health_port=health_port)
        return cls(mode, health_port=health_port)

    def authenticator(self) -> Authenticator:
        if self.mode == "tokens":
            return TokenAuthenticator(self.tokens_file)
        if self.mode == "mtls":
            return CertificateAuthenticator()
        log.warning("AUTH_MODE=none: every gRPC call is accepted WITHOUT credentials and "
                    "WITHOUT permission checks; for tests only, never a deployment")
        return NoAuthentication()

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS requiring client certificates in mtls mode; None (plaintext) otherwise."""
        if self.tls is None:
            return None
        certificates = _ReloadingCertificates(self.tls)
        return grpc.dynamic_ssl_server_credentials(
            certificates.configuration(), certificates.fetch, require_client_authentication=True)


def _file(name: str, env: Mapping[str, str]) -> Path:
    path = Path(env_str(name, env=env))
    if not path.is_file():
        raise ConfigError(f"{name}: {path} is not a file")
    return path


def _pem_file(name: str, env: Mapping[str, str]) -> Path:
    path = _file(name, env)
    if b"-----BEGIN " not in path.read_bytes():
        raise ConfigError(f"{name}: {path} is not a PEM file")
    return path


class Gate:
    """Admits a call when its caller authenticates and holds a role the method's rule names;
    a method without a rule admits nobody."""

    def __init__(self, authenticator: Authenticator, rules: Mapping[str, Rule]):
        self.authenticator = authenticator
        self.rules = rules

    @staticmethod
    def is_open(method: str) -> bool:
        return method.startswith(OPEN_SERVICES)

    def admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        principal = self.authenticator.authenticate(context)
        rule = self.rules.get(method)
        if principal.checked and (rule is None or not rule.admits(principal)):
            raise PermissionDenied(f"{principal.org} ({', '.join(sorted(principal.roles))}) "
                                   f"may not call {method}")
        return principal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m policykit.auth",
        description="Makes a bearer token and prints it with the entry to add to "
                    "AUTH_TOKENS_FILE; only the entry's digest is ever stored.")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="a new token for an organisation")
    issue.add_argument("--org", required=True, help="e.g. bnnmt, bnnmt.communication, vtv")
    issue.add_argument("--role", dest="roles", action="append", required=True,
                       choices=sorted(ROLES), help="repeatable")
    issue.add_argument("--note", default="", help="who holds it, since when")
    args = parser.parse_args(argv)
    if not _ORG.match(args.org):
        parser.error(f"--org {args.org!r} is not an organisation id")
    token = secrets.token_urlsafe(32)
    entry = {"sha256": token_digest(token), "org": args.org, "roles": args.roles}
    if args.note:
        entry["note"] = args.note
    print(f"token (hand it to {args.org} over a secure channel; it is stored nowhere):\n"
          f"  {token}\n\nentry for AUTH_TOKENS_FILE (under `tokens:`):")
    print(yaml.safe_dump([entry], allow_unicode=True, sort_keys=False).rstrip())


if __name__ == "__main__":
    main()
