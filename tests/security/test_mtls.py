"""A service with AUTH_MODE=mtls, as in Kubernetes: TLS that requires a client certificate
signed by GRPC_TLS_CLIENT_CA, the caller's identity in its SAN URIs
(spiffe://policy.gov.vn/org/<org>/role/<role>), health on a plaintext port of its own for the
probes, and a renewed server certificate served without a restart. The CA and certificates
are made here."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy.local.kafka_broker import free_port
from policy.drafting.v1 import drafting_service_pb2_grpc as api_grpc
from policy_sdk import DraftingClient, PermissionDenied, tls_credentials
from policyctl.cli import cli
from services.drafting.tests.helpers import register_request
from tests.support import (RunningService, eventually, health_status, platform_env,
                           start_service)


class Authority:
    """A certificate authority that writes its certificate and the ones it signs as PEM files."""

    def __init__(self, folder: Path, name: str):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = self._builder(self.name, self.key).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(
            self.key, hashes.SHA256())
        self.cert_file = self._write(f"{name}.crt", self.certificate.public_bytes(
            serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, key) -> x509.CertificateBuilder:
        now = datetime.now(timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1)))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def issue(self, name: str, names: list[x509.GeneralName]) -> tuple[Path, Path]:
        """Writes `<name>.crt` and `<name>.key`; returns their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = self._builder(subject, key).add_extension(
            x509.SubjectAlternativeName(names), critical=False).sign(self.key, hashes.SHA256())
        return (self._write(f"{name}.crt", certificate.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{name}.key", key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption())))


def identity(org: str, role: str) -> x509.GeneralName:
    return x509.UniformResourceIdentifier(f"spiffe://policy.gov.vn/org/{org}/role/{role}")


SERVER_NAMES = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger = Authority(folder, "policy-ca"), Authority(folder, "other-ca")
    files = {"ca": ca.cert_file, "other-ca": stranger.cert_file}
    for name, names in [("server", SERVER_NAMES),
                        ("bnnmt", [identity("bnnmt", "drafting-agency")]),
                        ("byt", [identity("byt", "drafting-agency")]),
                        ("nobody", [x509.DNSName("client.example")])]:
        files[name], files[f"{name}-key"] = ca.issue(name, names)
    files["forged"], files["forged-key"] = stranger.issue(
        "forged", [identity("bnnmt", "drafting-agency")])
    # Renewed later: signed by a new CA, so clients can tell which certificate they got.
    renewer = Authority(folder, "renewal-ca")
    files["renewal-ca"] = renewer.cert_file
    files["renewed"], files["renewed-key"] = renewer.issue("renewed", SERVER_NAMES)
    return files


@dataclass
class Secured:
    service: RunningService
    folder: Path          # holds the server's certificate and key
    health_target: str    # the plaintext health port

    @property
    def target(self) -> str:
        """The TLS address, by the name in the server's certificate."""
        return self.service.grpc_target.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def drafting(platform_topics, database_url, tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("mtls")
    # The server's files are copies, replaced in place to renew them.
    for name in ("server", "server-key"):
        (folder / name).write_bytes(pki[name].read_bytes())
    health_port = free_port()
    service = start_service("services.drafting", folder, platform_env(
        platform_topics, database_url, {
            "AUTH_MODE": "mtls", "GRPC_TLS_CERT": str(folder / "server"),
            "GRPC_TLS_KEY": str(folder / "server-key"), "GRPC_TLS_CLIENT_CA": str(pki["ca"]),
            "GRPC_HEALTH_PORT": str(health_port)}))
    yield Secured(service, folder, f"127.0.0.1:{health_port}")
    service.terminate()


def credentials(pki, client: str) -> grpc.ChannelCredentials:
    """TLS trusting the platform's CA, with the client's certificate unless "no certificate"."""
    if client == "no certificate":
        return tls_credentials(pki["ca"])
    return tls_credentials(pki["ca"], pki[client], pki[f"{client}-key"])


def call_as(drafting: Secured, tls: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The status of a registration over TLS with `tls` (plaintext for None)."""
    channel = (grpc.insecure_channel(drafting.service.grpc_target) if tls is None
               else grpc.secure_channel(drafting.target, tls))
    with channel:
        try:
            api_grpc.DraftingServiceStub(channel).RegisterDraft(
                register_request(lead_agency_id="btnmt"), timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()


def test_the_certificate_names_the_caller(drafting, pki):
    with DraftingClient(drafting.target, credentials=credentials(pki, "bnnmt")) as bnnmt:
        draft = bnnmt.register_draft(
            regulation_type="REGULATION_TYPE_DECREE", title="Nghị định về đất trồng lúa",
            lead_agency_id="btnmt", impact_level="IMPACT_LEVEL_LOW")
    with DraftingClient(drafting.target, credentials=credentials(pki, "byt")) as byt:
        assert byt.get_draft(draft.regulation_id).lead_agency_id == "btnmt"
        with pytest.raises(PermissionDenied, match="byt may not change drafts of btnmt"):
            byt.withdraw_draft(draft.regulation_id, reason="Không phải của Bộ Y tế")


def test_callers_without_a_valid_identity_are_refused(drafting, pki):
    # The handshake itself refuses a plaintext call, a missing certificate and one signed by
    # another CA: the call never reaches the service.
    assert call_as(drafting, None) == grpc.StatusCode.UNAVAILABLE
    assert call_as(drafting, credentials(pki, "no certificate")) == grpc.StatusCode.UNAVAILABLE
    assert call_as(drafting, credentials(pki, "forged")) == grpc.StatusCode.UNAVAILABLE
    # Signed, but naming no organisation.
    assert call_as(drafting, credentials(pki, "nobody")) == grpc.StatusCode.UNAUTHENTICATED
    assert call_as(drafting, credentials(pki, "bnnmt")) == grpc.StatusCode.OK


def test_probes_use_the_plaintext_health_port(drafting):
    assert health_status(drafting.health_target) == health_pb2.HealthCheckResponse.SERVING


def test_policyctl_connects_with_the_tls_files_of_its_variables(drafting, pki):
    result = CliRunner().invoke(cli, [f"--target=drafting={drafting.target}", "--json",
                                      "drafts", "list", "--agency", "btnmt"], env={
        "POLICYCTL_TLS_CA": str(pki["ca"]), "POLICYCTL_TLS_CERT": str(pki["bnnmt"]),
        "POLICYCTL_TLS_KEY": str(pki["bnnmt-key"])})
    assert result.exit_code == 0, result.output


def test_a_renewed_server_certificate_is_served_without_a_restart(drafting, pki):
    renewed_ca = tls_credentials(pki["renewal-ca"], pki["bnnmt"], pki["bnnmt-key"])
    assert call_as(drafting, renewed_ca) == grpc.StatusCode.UNAVAILABLE
    # As a Secret volume update does: new files swapped in whole.
    for name, source in (("server", "renewed"), ("server-key", "renewed-key")):
        staged = drafting.folder / f".{name}"
        staged.write_bytes(pki[source].read_bytes())
        os.replace(staged, drafting.folder / name)
    eventually(lambda: call_as(drafting, renewed_ca) == grpc.StatusCode.OK,
               what="the renewed certificate")
    assert call_as(drafting, credentials(pki, "bnnmt")) == grpc.StatusCode.UNAVAILABLE
