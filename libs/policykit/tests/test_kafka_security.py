"""The Kafka security settings: what the environment may say, what each client library gets,
and errors that name the variable. Connecting with them: tests/ops/test_kafka_authentication.py."""

import shutil
import ssl
import subprocess

import faust
import pytest

from policykit.config import ConfigError, ServiceSettings
from policykit.kafka_security import PLAINTEXT, KafkaSecurity

SCRAM = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "policy-drafting",
         "KAFKA_SASL_PASSWORD": "s3cret"}


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> dict[str, str]:
    """A self-signed certificate (usable as a CA file too) and its key, by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("pem")
    cert, key = folder / "user.crt", folder / "user.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=policy-drafting",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    garbage = folder / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {"cert": str(cert), "key": str(key), "garbage": str(garbage)}


def test_nothing_set_is_plaintext_for_every_library():
    security = KafkaSecurity.from_env({})
    assert security == PLAINTEXT
    assert security.client_settings() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_settings() == {}


def test_scram_over_tls_with_the_cluster_ca(pem):
    security = KafkaSecurity.from_env({**SCRAM, "KAFKA_SSL_CAFILE": pem["cert"]})
    settings = security.client_settings()
    assert {k: v for k, v in settings.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "policy-drafting", "sasl_plain_password": "s3cret"}
    context = settings["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1
    [credentials] = security.faust_settings().values()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value, credentials.username,
            credentials.password) == ("SASL_SSL", "SCRAM-SHA-512", "policy-drafting", "s3cret")
    assert credentials.ssl_context is context  # one context for every client of the process
    assert "s3cret" not in repr(security)


def test_mutual_tls_gives_faust_ssl_credentials(pem):
    security = KafkaSecurity.from_env({
        "KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CAFILE": pem["cert"],
        "KAFKA_SSL_CERTFILE": pem["cert"], "KAFKA_SSL_KEYFILE": pem["key"]})
    assert security.client_settings()["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in security.client_settings()
    [credentials] = security.faust_settings().values()
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context is security.ssl_context


def test_tls_without_a_ca_file_trusts_the_system_cas():
    security = KafkaSecurity.from_env({**SCRAM, "KAFKA_SASL_MECHANISM": "scram-sha-256"})
    assert security.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert security.client_settings()["sasl_mechanism"] == "SCRAM-SHA-256"


def test_the_password_may_come_from_a_file_without_its_newline(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-secret\n")
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "policy-ops",
           "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    security = KafkaSecurity.from_env(env)
    assert (security.password, security.ssl_context) == ("from-a-secret", None)
    assert "ssl_context" not in security.client_settings()


@pytest.mark.parametrize("env, variable", [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ({**SCRAM, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
    ({**SCRAM, "KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD_FILE": "/run/secrets/password"},
     "KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": "/nonexistent"},
     "KAFKA_SASL_PASSWORD_FILE: cannot read /nonexistent"),
    # Credentials or TLS files with a protocol that would not use them: it was forgotten.
    ({"KAFKA_SASL_USERNAME": "policy-drafting", "KAFKA_SASL_PASSWORD": "x"},
     "KAFKA_SASL_USERNAME is set, but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
     "KAFKA_SASL_MECHANISM is set, but KAFKA_SECURITY_PROTOCOL is SSL"),
    ({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CAFILE": "/ca.crt"},
     "KAFKA_SSL_CAFILE is set, but KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT"),
    ({**SCRAM, "KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"}, "KAFKA_SSL_CAFILE: cannot load"),
    ({**SCRAM, "KAFKA_SSL_CERTFILE": "/user.crt"}, "KAFKA_SSL_KEYFILE must be set too"),
    ({**SCRAM, "KAFKA_SSL_KEYFILE": "/user.key"}, "KAFKA_SSL_CERTFILE must be set too"),
])
def test_errors_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        KafkaSecurity.from_env(env)


def test_unusable_files_are_named(pem, tmp_path):
    empty = tmp_path / "password"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="KAFKA_SASL_PASSWORD_FILE: .* is empty"):
        KafkaSecurity.from_env({**SCRAM, "KAFKA_SASL_PASSWORD": "",
                                "KAFKA_SASL_PASSWORD_FILE": str(empty)})
    with pytest.raises(ConfigError, match="KAFKA_SSL_CAFILE: cannot load"):
        KafkaSecurity.from_env({**SCRAM, "KAFKA_SSL_CAFILE": pem["garbage"]})
    with pytest.raises(ConfigError, match="KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE: cannot load"):
        KafkaSecurity.from_env({**SCRAM, "KAFKA_SSL_CERTFILE": pem["cert"],
                                "KAFKA_SSL_KEYFILE": pem["garbage"]})


def test_a_service_validates_them_at_start():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "policy-kafka-kafka-bootstrap:9093",
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/regplatform"}
    assert ServiceSettings.from_env("drafting", env).kafka_security == PLAINTEXT
    settings = ServiceSettings.from_env("drafting", {**env, **SCRAM})
    assert settings.kafka_security.username == "policy-drafting"
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME"):
        ServiceSettings.from_env("drafting", {**env, **SCRAM, "KAFKA_SASL_USERNAME": ""})
