"""The commands communication offices, portals and evaluators use, against the running
platform: tasks, consultation comments and bulk imports, the timeline, scorecards."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from policyctl.tests.test_drafts import TITLE, register
from tests.support import eventually

OFFICE = "bnnmt.communication"  # btnmt merged into bnnmt: its tasks go to the successor


def _succeeds(policyctl, *args: str):
    """The command's JSON output once it exits 0, else None (the platform is catching up)."""
    result = policyctl("--json", *args, expect=None)
    return json.loads(result.stdout) if result.exit_code == 0 else None


@pytest.fixture(scope="module")
def regulation(policyctl) -> str:
    """A draft in consultation, registered and submitted with policyctl."""
    regulation_id = register(policyctl)["regulation_id"]
    policyctl("drafts", "submit", regulation_id)
    eventually(lambda: _succeeds(policyctl, "consultation", "show", regulation_id),
               what="the consultation to open")
    return regulation_id


def test_an_office_works_through_its_tasks(policyctl, regulation):
    mine = eventually(lambda: policyctl.json("tasks", "list", "--org", OFFICE,
                                             "--regulation", regulation),
                      what="the office's tasks")
    assert {t["owner_org_id"] for t in mine} == {OFFICE}
    brief = next(t for t in mine if t["kind"] == "policy-brief")

    table = policyctl("tasks", "list", "--org", OFFICE, "--regulation", regulation).stdout
    assert brief["task_id"] in table and "policy-brief" in table

    accepted = policyctl.json("tasks", "accept", brief["task_id"], "--by", "Phòng Truyền thông")
    assert accepted["status"] == "TASK_STATUS_ACCEPTED"
    policyctl("tasks", "progress", brief["task_id"], "--percent", "60", "--note", "Đã có dự thảo")
    done = policyctl.json("tasks", "complete", brief["task_id"], "--evidence-url",
                          "https://bnnmt.gov.vn/tai-lieu/de-cuong", "--reach", "12000",
                          "--note", "Đăng trên cổng thông tin của Bộ")
    assert done["status"] == "TASK_STATUS_COMPLETED"
    assert done["evidence"]["reach_count"] == "12000"  # int64 is a string in protobuf JSON

    shown = policyctl("tasks", "show", brief["task_id"]).stdout
    assert "https://bnnmt.gov.vn/tai-lieu/de-cuong" in shown and "completed" in shown
    completed = policyctl.json("tasks", "list", "--org", OFFICE, "--regulation", regulation,
                               "--status", "completed")
    assert [t["task_id"] for t in completed] == [brief["task_id"]]

    again = policyctl("tasks", "accept", brief["task_id"], "--by", "ai đó", expect=5)
    assert "FAILED_PRECONDITION" in again.stderr
    policyctl("tasks", "show", "00000000-0000-4000-8000-000000000000", expect=4)
    assert "task_id" in policyctl("tasks", "show", "no-such-task", expect=3).stderr


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, ["text", "stakeholder_type", "province_code",
                                       "article_ref", "email"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_comments_one_by_one_and_imported_from_a_file(policyctl, regulation, tmp_path):
    one = policyctl.json("consultation", "comment", regulation, "--text",
                         "Đề nghị làm rõ thời hạn giao đất cho hộ gia đình.",
                         "--stakeholder", "citizen", "--province", "02",
                         "--article", "Điều 5", "--email", "nguoi-dan@example.vn")
    assert one["comment_id"] and not one["resubmitted"]

    good = [{"text": f"Ý kiến số {n}: cần hỗ trợ người dân vùng biên giới chuyển đổi nghề.",
             "stakeholder_type": "citizen", "province_code": "02", "article_ref": "Điều 7",
             "email": f"ca-nhan-{n}@example.vn"} for n in range(25)]
    bad = [{"text": "", "stakeholder_type": "citizen", "province_code": "02"},
           {"text": "Tỉnh không tồn tại", "stakeholder_type": "citizen", "province_code": "99"},
           {"text": "Đối tượng sai", "stakeholder_type": "tourist", "province_code": "02"}]
    source = write_csv(tmp_path / "y-kien.csv", good[:10] + bad + good[10:])

    imported = policyctl("consultation", "import", regulation, str(source), expect=8)
    assert "25 comment(s) accepted" in imported.stdout and "3 rejected" in imported.stdout
    rejected_file = tmp_path / "y-kien.rejected.csv"
    with rejected_file.open(encoding="utf-8") as file:
        rejected = list(csv.DictReader(file))
    assert [(r["rejected_row"], r["rejected_field"]) for r in rejected] == [
        ("11", "text"), ("12", "province_code"), ("13", "stakeholder_type")]
    assert all(r["rejected_reason"] for r in rejected)

    # The same file again stores nothing twice.
    again = policyctl.json("consultation", "import", regulation, str(source), expect=8)
    assert again["accepted"] == 25 and again["already_received"] == 25

    # The rejected rows, corrected in place, import as they are.
    fixed = [{**r, "text": r["text"] or "Ý kiến bổ sung", "province_code": "02",
              "stakeholder_type": "citizen"} for r in rejected]
    with rejected_file.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, list(fixed[0]))
        writer.writeheader()
        writer.writerows(fixed)
    assert policyctl.json("consultation", "import", regulation, str(rejected_file))[
        "accepted"] == 3

    jsonl = tmp_path / "portal.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"text": "Gửi qua cổng: ủng hộ dự thảo", "stakeholder_type": "business",
                    "province_code": "01", "contact": {"organisation": "Công ty Hưng Thịnh"}},
                   ensure_ascii=False),
        "{not json",
    ]) + "\n", encoding="utf-8")
    portal = policyctl.json("consultation", "import", regulation, str(jsonl), expect=8)
    assert (portal["accepted"], portal["rejected"]) == (1, 1)

    listed = eventually(lambda: [c for c in policyctl.json("consultation", "comments", regulation,
                                                           "--limit", "500")
                                 if c["article"] == "Điều 7"], what="the imported comments")
    assert len(listed) == 25 and not any("email" in json.dumps(c) for c in listed)

    answer = policyctl.json("consultation", "answer", regulation, "--comment", one["comment_id"],
                            "--outcome", "accepted", "--explanation",
                            "Tiếp thu: bổ sung thời hạn 30 ngày.")
    assert answer["comments_answered"] == "1"

    def answered():
        shown = _succeeds(policyctl, "consultation", "show", regulation)
        return shown if shown and shown["comments_answered"] == "1" else None
    assert eventually(answered, what="the answer to be counted")["title"] == TITLE


def test_an_import_refuses_a_file_it_cannot_read(policyctl, regulation, tmp_path):
    unknown = tmp_path / "cot-sai.csv"
    unknown.write_text("text,provinc_code\nmột ý kiến,02\n", encoding="utf-8")
    refused = policyctl("consultation", "import", regulation, str(unknown), expect=3)
    assert "provinc_code" in refused.stderr
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("text\nÝ kiến về giá đất\n".encode("latin-1", errors="ignore"))
    assert "UTF-8" in policyctl("consultation", "import", regulation, str(latin1),
                                expect=3).stderr
    policyctl("consultation", "import", regulation, str(tmp_path / "y.txt"), expect=2)


def test_the_timeline_and_scorecards_read_as_tables(policyctl, regulation):
    timeline = eventually(lambda: _succeeds(policyctl, "timeline", regulation),
                          what="the timeline")
    assert timeline["regulation"]["title"] == TITLE
    printed = policyctl("timeline", regulation).stdout
    assert TITLE in printed and "communication task(s)" in printed

    month = (datetime.now(timezone.utc) + timedelta(hours=7)).strftime("%Y-%m")
    ranking = policyctl.json("scorecards", "rankings", "agency", "--period", month)
    assert isinstance(ranking, list)
    table = policyctl("scorecards", "rankings", "agency", "--period", month).stdout
    assert f"Rankings, {month}" in table
    card = policyctl.json("scorecards", "show", "agency", "bnnmt", "--period", month)
    assert card["subject_id"] == "bnnmt" and card["period"] == month
    printed_card = policyctl("scorecards", "show", "agency", "btnmt", "--period", month).stdout
    assert "Score" in printed_card and "(bnnmt)" in printed_card
    policyctl("scorecards", "rankings", "agency", "--period", "tháng mười", expect=3)
