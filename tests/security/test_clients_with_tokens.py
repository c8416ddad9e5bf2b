"""The SDK and policyctl against services that authenticate bearer tokens (AUTH_MODE=tokens):
the token goes with every call and every retry; a missing token or another organisation's
draft is refused, and policyctl says so with exit code 7."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from policy_sdk import DraftingClient, PermissionDenied, RetryPolicy, Unauthenticated
from policy_sdk.tests.proxy import LossyProxy
from policyctl import errors
from policyctl.cli import cli
from tests.security.tokens import TOKENS, start_with_tokens

DRAFT = dict(regulation_type="REGULATION_TYPE_DECREE", title="Nghị định về đất trồng lúa",
             impact_level="IMPACT_LEVEL_LOW", affected_province_codes=["02"])


@pytest.fixture(scope="module")
def services(platform_topics, database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clients-with-tokens")
    started = start_with_tokens(("drafting", "communication"), folder, platform_topics,
                                database_url)
    yield {name: service.grpc_target for name, service in started.items()}
    for service in started.values():
        service.terminate()


def test_the_sdk_sends_the_token_with_every_call_and_retry(services):
    with LossyProxy(services["drafting"]) as proxy, \
            DraftingClient(proxy.target, token=TOKENS["agency"],
                           retry=RetryPolicy(initial_backoff=0.01)) as client:
        proxy.lose_next_answers("RegisterDraft")
        draft = client.register_draft(lead_agency_id="btnmt", **DRAFT)
        # The first answer was lost: the retry, with the token again, got the same draft.
        assert len(proxy.requests("RegisterDraft")) == 2
        assert proxy.lost_answers["RegisterDraft"]
        assert client.get_draft(draft.regulation_id).lead_agency_id == "btnmt"


def test_the_sdk_raises_for_a_missing_token_and_another_agency(services):
    with DraftingClient(services["drafting"]) as anonymous:
        with pytest.raises(Unauthenticated, match="authorization"):
            anonymous.register_draft(lead_agency_id="bnnmt", **DRAFT)
    with DraftingClient(services["drafting"], token=TOKENS["other-agency"]) as other:
        with pytest.raises(PermissionDenied, match="byt may not change drafts of bnnmt"):
            other.register_draft(lead_agency_id="bnnmt", **DRAFT)


def policyctl(services, *args, token: str | None = None, env: dict[str, str] | None = None):
    options = [f"--target={name}={target}" for name, target in services.items()]
    return CliRunner().invoke(cli, [*options, *(["--token", token] if token else []), *args],
                              env=env)


def test_policyctl_calls_with_the_token_of_its_option_or_variable(services):
    registered = policyctl(services, "--json", "drafts", "register", "--type", "decree",
                           "--title", "Nghị định về đất trồng lúa", "--lead-agency", "bnnmt",
                           "--impact", "low", token=TOKENS["agency"])
    assert registered.exit_code == 0, registered.output
    listed = policyctl(services, "--json", "tasks", "list", "--org", "vtv",
                       env={"POLICYCTL_TOKEN": TOKENS["owner"]})
    assert listed.exit_code == 0, listed.output
    assert isinstance(json.loads(listed.stdout), list)


def test_policyctl_exits_7_when_not_authenticated_or_not_permitted(services):
    with DraftingClient(services["drafting"], token=TOKENS["agency"]) as client:
        draft = client.register_draft(lead_agency_id="bnnmt", **DRAFT)
    for token, args, code in [
            (None, ("drafts", "list"), "UNAUTHENTICATED"),
            ("not-a-token", ("drafts", "list"), "UNAUTHENTICATED"),
            (TOKENS["other-agency"], ("drafts", "withdraw", draft.regulation_id,
                                      "--reason", "Không phải của Bộ Y tế"), "PERMISSION_DENIED"),
            (TOKENS["owner"], ("tasks", "list", "--org", "baochinhphu"), "PERMISSION_DENIED")]:
        result = policyctl(services, "--json", *args, token=token)
        assert result.exit_code == errors.DENIED == 7, (args, result.output)
        assert json.loads(result.stderr)["error"]["code"] == code
