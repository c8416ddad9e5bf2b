"""policykit.auth without a server: settings, the tokens file and its revocation, who speaks
for an agency across the 2025 mergers, the access tables, and the token-issuing command."""

from __future__ import annotations

import os

import pytest
import yaml

from policy.evaluation.v1 import evaluation_service_pb2
from policykit import auth
from policykit.config import ConfigError
from policykit.errors import PermissionDenied, Unauthenticated


class Context:
    """What an authenticator reads of a call."""

    def __init__(self, metadata=(), peer_uris=()):
        self.metadata = metadata
        self.peer_uris = peer_uris

    def invocation_metadata(self):
        return self.metadata

    def auth_context(self):
        return {"peer_uri": list(self.peer_uris)} if self.peer_uris else {}


def tokens_file(path, *entries):
    path.write_text(yaml.safe_dump({"tokens": list(entries)}), "utf-8")
    return path


def entry(token: str, org: str = "bnnmt", roles=("drafting-agency",)) -> dict:
    return {"sha256": auth.token_digest(token), "org": org, "roles": list(roles)}


@pytest.mark.parametrize("env, message", [
    ({}, "AUTH_MODE must be one of tokens, mtls, none, got ''"),
    ({"AUTH_MODE": "jwt"}, "AUTH_MODE must be one of"),
    ({"AUTH_MODE": "tokens"}, "AUTH_TOKENS_FILE must be set"),
    ({"AUTH_MODE": "tokens", "AUTH_TOKENS_FILE": "/nonexistent"},
     "AUTH_TOKENS_FILE: /nonexistent is not a file"),
    ({"AUTH_MODE": "mtls"}, "GRPC_HEALTH_PORT must be set with AUTH_MODE=mtls"),
    ({"AUTH_MODE": "mtls", "GRPC_HEALTH_PORT": "8081"}, "GRPC_TLS_CERT must be set"),
    ({"AUTH_MODE": "none", "GRPC_HEALTH_PORT": "x"}, "GRPC_HEALTH_PORT must be an integer"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        auth.AuthSettings.from_env(env)


def test_a_certificate_file_must_be_pem(tmp_path):
    not_pem = tmp_path / "cert"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError, match=f"GRPC_TLS_CERT: {not_pem} is not a PEM file"):
        auth.AuthSettings.from_env({"AUTH_MODE": "mtls", "GRPC_HEALTH_PORT": "8081",
                                    "GRPC_TLS_CERT": str(not_pem)})


@pytest.mark.parametrize("bad, message", [
    ({"sha256": "abc"}, r"tokens\[1\].sha256: must be the 64 hex digits"),
    ({"org": "Bộ Y tế"}, r"tokens\[1\].org: must be an organisation id"),
    ({"roles": ["minister"]}, r"tokens\[1\].roles: must be a non-empty list of"),
    ({"roles": []}, r"tokens\[1\].roles"),
    ({"token": "plaintext"}, r"tokens\[1\]: must be a mapping of sha256, org, roles and note"),
])
def test_a_bad_tokens_file_names_the_entry_and_field(tmp_path, bad, message):
    path = tokens_file(tmp_path / "tokens.yaml", entry("a"), {**entry("b"), **bad})
    with pytest.raises(ConfigError, match=f"AUTH_TOKENS_FILE: {path}: {message}"):
        auth.load_tokens(path)


def test_a_token_is_known_by_its_digest_and_revoked_by_removing_it(tmp_path):
    path = tokens_file(tmp_path / "tokens.yaml", entry("secret-1"),
                       entry("secret-2", "vtv", ["communication"]))
    assert "secret-1" not in path.read_text()
    tokens = auth.TokenAuthenticator(path)
    caller = tokens.authenticate(Context([("authorization", "Bearer secret-2")]))
    assert (caller.org, caller.roles, caller.authenticated_by) == (
        "vtv", frozenset({"communication"}), "token")
    for metadata, message in [((), "send the metadata"),
                              ([("authorization", "Basic c2VjcmV0")], "must be `Bearer"),
                              ([("authorization", "Bearer wrong")], "unknown or revoked")]:
        with pytest.raises(Unauthenticated, match=message):
            tokens.authenticate(Context(metadata))

    tokens_file(path, entry("secret-1"))
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1))  # a change within the clock tick
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        tokens.authenticate(Context([("authorization", "Bearer secret-2")]))
    # A broken edit keeps the last good table.
    path.write_text("tokens: [", "utf-8")
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 2))
    assert tokens.authenticate(Context([("authorization", "Bearer secret-1")])).org == "bnnmt"


def test_a_certificate_names_one_organisation_and_its_roles():
    uri = "spiffe://policy.gov.vn/org/{}/role/{}".format
    caller = auth.CertificateAuthenticator().authenticate(Context(peer_uris=[
        uri("bnnmt.spokesperson", "spokesperson").encode(),
        uri("bnnmt.spokesperson", "communication").encode()]))
    assert (caller.org, caller.roles, caller.authenticated_by) == (
        "bnnmt.spokesperson", frozenset({"spokesperson", "communication"}), "mtls")
    for uris in ([], [b"spiffe://other.example/org/bnnmt/role/drafting-agency"],
                 [uri("bnnmt", "drafting-agency").encode(), uri("byt", "operator").encode()]):
        with pytest.raises(Unauthenticated, match="must name one organisation"):
            auth.CertificateAuthenticator().authenticate(Context(peer_uris=uris))


def as_caller(org: str, *roles: str):
    return auth.calling_as(auth.Principal(org, frozenset(roles), "token"))


def test_a_successor_speaks_for_the_agencies_it_merged():
    with as_caller("bnnmt", auth.DRAFTING_AGENCY):
        assert auth.speaks_for("bnnmt") and auth.speaks_for("btnmt") and auth.speaks_for("bnnptnt")
        assert not auth.speaks_for("byt") and not auth.speaks_for("no-such-agency")
        assert not auth.speaks_for("bnnmt", office="spokesperson")
    with as_caller("bnnmt.spokesperson", auth.SPOKESPERSON):
        assert auth.speaks_for("btnmt", office="spokesperson") and not auth.speaks_for("btnmt")
    with as_caller("btnmt", auth.DRAFTING_AGENCY):  # a predecessor does not speak for its heir
        assert auth.speaks_for("btnmt") and not auth.speaks_for("bnnmt")


def test_require_refuses_a_checked_caller_only():
    with as_caller("byt", auth.DRAFTING_AGENCY):
        with pytest.raises(PermissionDenied, match="byt may not change drafts of bnnmt"):
            auth.require(auth.speaks_for("bnnmt"), "change drafts of bnnmt")
    with auth.calling_as(auth.UNCHECKED):
        auth.require(False, "anything")


def test_an_access_table_names_every_method_and_nothing_else():
    service = evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name
    with pytest.raises(ValueError, match=r"none for \['GetRegulationKpis'\]"):
        auth.rules_for(service, {"GetScorecard": auth.ANY_ROLE, "ListRankings": auth.ANY_ROLE})
    with pytest.raises(ValueError, match=r"rules for \['DeleteEverything'\] that do not exist"):
        auth.rules_for(service, {"GetScorecard": auth.ANY_ROLE, "ListRankings": auth.ANY_ROLE,
                                 "GetRegulationKpis": auth.ANY_ROLE,
                                 "DeleteEverything": auth.ANY_ROLE})
    with pytest.raises(ValueError, match="unknown roles"):
        auth.only("minister")


def test_the_gate_admits_by_role_and_refuses_a_method_without_a_rule(tmp_path):
    path = tokens_file(tmp_path / "tokens.yaml", entry("t", "ops", ["operator"]))
    method = "/policy.evaluation.v1.EvaluationService/GetScorecard"
    gate = auth.Gate(auth.TokenAuthenticator(path), {method: auth.only(auth.OPERATOR)})
    context = Context([("authorization", "Bearer t")])
    assert gate.admit(method, context).org == "ops"
    with pytest.raises(PermissionDenied, match="ops \\(operator\\) may not call /x.Y/Z"):
        gate.admit("/x.Y/Z", context)
    assert gate.is_open("/grpc.health.v1.Health/Check")
    assert not gate.is_open(method)


def test_issue_prints_a_token_whose_entry_authenticates_it(tmp_path, capsys):
    auth.main(["issue", "--org", "vtv", "--role", "communication", "--note", "Ban Thời sự"])
    out = capsys.readouterr().out
    token = out.split("\n")[1].strip()
    entries = yaml.safe_load(out.split("(under `tokens:`):\n")[1])
    assert entries[0]["note"] == "Ban Thời sự" and token not in yaml.safe_dump(entries)
    path = tokens_file(tmp_path / "tokens.yaml", *entries)
    caller = auth.TokenAuthenticator(path).authenticate(
        Context([("authorization", f"Bearer {token}")]))
    assert caller.org == "vtv"
