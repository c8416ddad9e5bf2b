"""How Kafka clients authenticate: the listener's security protocol, SASL credentials and TLS
files, read from the environment and validated at start, as the settings of each client
library the platform uses.

- KAFKA_SECURITY_PROTOCOL: PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL.
- KAFKA_SASL_MECHANISM: SCRAM-SHA-512 (the default with SASL), SCRAM-SHA-256 or PLAIN.
- KAFKA_SASL_USERNAME: the SASL user (a Strimzi KafkaUser's name); required with SASL.
- KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: its password, or a file holding it (a
  mounted Secret key); exactly one with SASL.
- KAFKA_SSL_CAFILE: PEM file of the CAs that signed the brokers' certificates (Strimzi: the
  cluster CA's ca.crt); the system's CAs when unset. Host names are verified.
- KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE: the client's certificate and key for mutual TLS
  (a Strimzi `tls` user's user.crt and user.key); both or neither.

A variable that only makes sense with another protocol (credentials without SASL, files without
TLS) is an error rather than ignored: it means the protocol was forgotten, and the client would
connect without the security it was given. Files are read once, here: a rotated password or
certificate takes effect when the process restarts (docs/runbook.md, "Kafka credentials")."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from policykit.config import ConfigError, env_str

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SASL_VARIABLES = ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
                  "KAFKA_SASL_PASSWORD_FILE")
SSL_VARIABLES = ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")


@dataclass(frozen=True)
class KafkaSecurity:
    """One process's Kafka security settings; build it with from_env."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # Built once from the files, shared by every client of the process.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "KafkaSecurity":
        """Reads and checks the variables above; raises ConfigError naming the one at fault."""
        protocol = env_str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", env=env).upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
                              f"got {protocol!r}")
        sasl, tls = protocol.startswith("SASL_"), protocol in ("SSL", "SASL_SSL")
        for variables, wanted, needs in ((SASL_VARIABLES, sasl, "SASL_PLAINTEXT or SASL_SSL"),
                                         (SSL_VARIABLES, tls, "SSL or SASL_SSL")):
            stray = [name for name in variables if env.get(name) and not wanted]
            if stray:
                raise ConfigError(f"{stray[0]} is set, but KAFKA_SECURITY_PROTOCOL is "
                                  f"{protocol}; it needs {needs}")
        if not sasl:
            return cls(protocol, ssl_context=_ssl_context(env) if tls else None)
        mechanism = env_str("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", env=env).upper()
        if mechanism not in MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                              f"got {mechanism!r}")
        return cls(protocol, mechanism, env_str("KAFKA_SASL_USERNAME", env=env), _password(env),
                   _ssl_context(env) if tls else None)

    def client_settings(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and
        KafkaAdminClient, and for aiokafka's AIOKafkaProducer and AIOKafkaConsumer: the two
        libraries name these settings alike."""
        settings: dict[str, Any] = {"security_protocol": self.protocol}
        if self.ssl_context is not None:
            settings["ssl_context"] = self.ssl_context
        if self.sasl_mechanism is not None:
            settings.update(sasl_mechanism=self.sasl_mechanism,
                            sasl_plain_username=self.username, sasl_plain_password=self.password)
        return settings

    def faust_settings(self) -> dict[str, Any]:
        """Settings for faust.App: broker_credentials, which Faust turns into the same aiokafka
        arguments for its consumer, producer and topic administration."""
        import faust  # here, so that processes without a Faust app (policyctl) never load it

        if self.sasl_mechanism is not None:
            return {"broker_credentials": faust.SASLCredentials(
                username=self.username, password=self.password, ssl_context=self.ssl_context,
                mechanism=self.sasl_mechanism)}
        if self.ssl_context is not None:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context)}
        return {}


PLAINTEXT = KafkaSecurity()


def _password(env: Mapping[str, str]) -> str:
    inline, path = env.get("KAFKA_SASL_PASSWORD"), env.get("KAFKA_SASL_PASSWORD_FILE")
    if inline and path:
        raise ConfigError("KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set; "
                          "set one")
    if inline:
        return inline
    if not path:
        raise ConfigError("KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE must be set with "
                          "SASL")
    try:
        # A file written by `echo` ends with a newline that is no part of the password.
        password = Path(path).read_text("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"KAFKA_SASL_PASSWORD_FILE: cannot read {path}: {error}") from None
    if not password:
        raise ConfigError(f"KAFKA_SASL_PASSWORD_FILE: {path} is empty")
    return password


def _ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """Verifies the brokers' certificates and host names, against KAFKA_SSL_CAFILE when set."""
    cafile = env.get("KAFKA_SSL_CAFILE") or None
    certfile, keyfile = env.get("KAFKA_SSL_CERTFILE"), env.get("KAFKA_SSL_KEYFILE")
    if bool(certfile) != bool(keyfile):
        missing = "KAFKA_SSL_KEYFILE" if certfile else "KAFKA_SSL_CERTFILE"
        raise ConfigError(f"{missing} must be set too: mutual TLS needs the certificate and "
                          f"its key")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"KAFKA_SSL_CAFILE: cannot load {cafile}: {error}") from None
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE: cannot load {certfile} "
                              f"with {keyfile}: {error}") from None
    return context
