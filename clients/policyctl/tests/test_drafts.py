"""`policyctl drafts` against the running drafting service: the whole lifecycle, and the exit
codes and messages of what goes wrong."""

from __future__ import annotations

import json

from click.testing import CliRunner

from deploy.local.kafka_broker import free_port
from policyctl.cli import cli

TITLE = "Nghị định về quản lý đất đai ở vùng biên giới"


def register(policyctl, *extra: str) -> dict:
    return policyctl.json(
        "drafts", "register", "--type", "decree", "--title", TITLE,
        "--summary", "Quy định việc giao đất, cho thuê đất ở các xã biên giới.",
        "--lead-agency", "btnmt", "--impact", "high", "--group", "nong-dan",
        "--province", "02", "--province", "01",
        "--consultation-start", "2027-01-15", "--adoption", "2027-06-01", *extra)


def test_a_draft_from_registration_to_adoption(policyctl):
    draft = register(policyctl)
    regulation = draft["regulation_id"]
    assert draft["title"] == TITLE and draft["state"] == "DRAFT_STATE_DRAFTING"

    shown = policyctl("drafts", "show", regulation).stdout
    assert TITLE in shown and "drafting" in shown and "btnmt" in shown

    listed = policyctl.json("drafts", "list", "--agency", "btnmt", "--state", "drafting")
    assert regulation in [d["regulation_id"] for d in listed]

    revised = policyctl.json("drafts", "revise", regulation, "--change-summary",
                             "Bổ sung quy định về đất rừng phòng hộ", "--title", TITLE + " (sửa)")
    assert revised["version"] == 2 and revised["title"] == TITLE + " (sửa)"

    assessed = policyctl.json("drafts", "assess", regulation, "--impact", "medium",
                              "--summary", "Tác động đến 120 xã biên giới")
    assert assessed["impact_level"] == "IMPACT_LEVEL_MEDIUM"

    submitted = policyctl("drafts", "submit", regulation).stdout
    assert "in-consultation" in submitted
    assert policyctl.json("drafts", "adopt", regulation)["state"] == "DRAFT_STATE_ADOPTED"


def test_withdrawal_needs_a_reason_and_is_final(policyctl):
    regulation = register(policyctl)["regulation_id"]
    withdrawn = policyctl.json("drafts", "withdraw", regulation, "--reason", "Gộp vào dự án khác")
    assert withdrawn["state"] == "DRAFT_STATE_WITHDRAWN"
    refused = policyctl("drafts", "submit", regulation, expect=5)
    assert "FAILED_PRECONDITION" in refused.stderr and "WITHDRAWN" in refused.stderr


def test_refused_input_names_each_field(policyctl):
    refused = policyctl("drafts", "register", "--type", "decree", "--title", " ",
                        "--lead-agency", "no-such-ministry", "--impact", "low", expect=3)
    assert "INVALID_ARGUMENT" in refused.stderr
    assert "  title: " in refused.stderr and "  lead_agency_id: " in refused.stderr

    as_json = policyctl("--json", "drafts", "register", "--type", "decree", "--title", " ",
                        "--lead-agency", "btnmt", "--impact", "low", expect=3)
    error = json.loads(as_json.stderr)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["exit_code"] == 3
    assert [f["field"] for f in error["fields"]] == ["title"]


def test_an_unknown_draft_is_not_found(policyctl):
    missing = policyctl("drafts", "show", "khong-ton-tai", expect=4)
    assert "NOT_FOUND" in missing.stderr


def test_a_service_that_cannot_be_reached_ends_with_exit_code_6():
    result = CliRunner().invoke(cli, ["--target", f"drafting=127.0.0.1:{free_port()}",
                                      "--timeout", "1", "drafts", "show", "bat-ky"])
    assert result.exit_code == 6, (result.stdout, result.stderr, result.exception)
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


def test_a_bad_command_line_is_exit_code_2(policyctl):
    result = policyctl("drafts", "register", "--type", "edict", expect=2)
    assert "edict" in result.stderr
