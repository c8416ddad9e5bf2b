"""The local platform's tokens (`make up`): every development token of dev-tokens.yaml is
accepted as its organisation by the tokens file platform.env names, which holds digests only."""

from __future__ import annotations

from deploy.local.demo import dev_tokens
from deploy.local.supervisor import REPO, SETTINGS_FILE, read_env_file
from policykit.auth import AuthSettings, load_tokens, token_digest


def test_the_development_tokens_match_the_platforms_tokens_file():
    settings = read_env_file(SETTINGS_FILE)
    assert settings["AUTH_MODE"] == "tokens"
    path = REPO / settings["AUTH_TOKENS_FILE"]
    AuthSettings.from_env({**settings, "AUTH_TOKENS_FILE": str(path)})
    table = load_tokens(path)
    assert {org: table[token_digest(token)].org for org, token in dev_tokens().items()} == {
        org: org for org in dev_tokens()}
    assert len(table) == len(dev_tokens())
    assert not any(token in path.read_text("utf-8") for token in dev_tokens().values())
