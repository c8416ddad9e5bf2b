"""The dashboard in a real headless browser (Debian's chromium): the ranked scorecards, a
scorecard with its lost points, a regulation's timeline and the overdue list render with
data; the CSV exports and the printable report answer. Screenshots are kept in
services/evaluation/tests/artifacts/."""

import csv
import io
import re
import struct
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from policy.common.v1 import common_pb2 as common
from policy.consultation.v1 import events_pb2 as consultation
from policy.evaluation.v1 import evaluation_service_pb2 as api
from services.evaluation.periods import VIETNAM
from services.evaluation.tests.helpers import (draft, kpi, new_regulation_id, stamp,
                                               task_completed, task_created, task_overdue)
from tests.support import eventually

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).with_name("artifacts")
PERIOD = "2033-07"
# (owner, days late: None for overdue) — a spread of scores and colours.
OUTCOMES = [("bnnmt.communication", 0), ("bnnmt.spokesperson", None), ("byt.communication", 0),
            ("bct.communication", 3), ("bct.communication", None), ("vtv", 0),
            ("baochinhphu", None), ("bxd.communication", 2), ("tuyen-quang.commune-officers", 0),
            ("cao-bang.commune-officers", None), ("lai-chau.information-department", 0),
            ("tp-ha-noi.information-department", 4), ("ca-mau.information-department", None),
            ("dak-lak.commune-officers", 0), ("an-giang.grassroots-collaborators", 1),
            ("quang-ninh.information-department", 0)]


def july(day: int) -> datetime:
    return datetime(2033, 7, day, 9, tzinfo=VIETNAM)


@pytest.fixture(scope="module")
def regulation_id(evaluation, produce, stub) -> str:
    """A month of tasks for ministries, press agencies and provinces, with a consultation."""
    reg = new_regulation_id("bang-dieu-khien")
    produce.send(draft(reg, lead="bnnmt", planned_start=july(20)), at=july(1))
    produce.send(stamp(consultation.ConsultationOpened(regulation_id=reg, consultation_id="c1"),
                       opens_at=july(20), closes_at=july(30)), at=july(20))
    for i, (owner, late_by) in enumerate(OUTCOMES):
        unit = owner.partition(".")[0]
        regions = (unit,) if "." in owner and not unit.startswith("b") else ("national",)
        created = task_created(reg, "loudspeaker-script" if regions != ("national",)
                               else "press-release", owner, july(10 + i % 10),
                               channel=common.CHANNEL_COMMUNE_LOUDSPEAKER
                               if regions != ("national",) else common.CHANNEL_PRESS,
                               regions=regions)
        produce.send(created, at=july(1))
        due = created.task.due_at.ToDatetime(tzinfo=VIETNAM)
        produce.send(task_overdue(created) if late_by is None else task_completed(
            created, due.replace(day=due.day + late_by) if late_by else due.replace(hour=8),
            reach=1000 * (i + 1)), at=july(25))

    def settled() -> bool:
        cards = [card for kind in (api.SCORECARD_KIND_AGENCY, api.SCORECARD_KIND_PROVINCE)
                 for card in stub.ListRankings(api.ListRankingsRequest(
                     kind=kind, period=PERIOD), timeout=10).scorecards]
        return sum(kpi(card, name) for card in cards for name in (
            "tasks_on_time", "tasks_late", "tasks_overdue")) == len(OUTCOMES)

    eventually(settled, what="every July task settled")
    return reg


def chromium(*arguments: str, tmp_path: Path) -> str:
    """Runs headless chromium; returns what it printed. Fails when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the dashboard is tested in a real browser; "
                    "install it with `apt-get install -y chromium`")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
         *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    target.unlink(missing_ok=True)
    chromium(f"--screenshot={target}", "--window-size=1400,1000", url, tmp_path=tmp_path)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1400, 1000)
    assert len(data) > 30_000, "an almost empty page compresses to a few kilobytes"
    return target


def test_ranked_scorecards_render_with_data_in_the_browser(evaluation, regulation_id, tmp_path):
    url = f"{evaluation.dashboard_url}/?period={PERIOD}"
    dom = chromium("--dump-dom", url, tmp_path=tmp_path)
    assert "<h1>Xếp hạng kỳ 2033-07</h1>" in dom
    agencies = re.search(r'<section id="agencies".*?</section>', dom, re.S).group(0)
    rows = re.findall(r'class="scorecard-row" data-subject="([^"]+)" data-rank="(\d+)" '
                      r'data-score="([\d.]*)"', agencies)
    assert {subject for subject, _, _ in rows} >= {"bnnmt", "byt", "bct", "vtv", "baochinhphu"}
    assert [int(rank) for _, rank, _ in rows] == sorted(int(rank) for _, rank, _ in rows)
    assert ("byt", "1", "100.0") in rows
    assert "Bộ Nông nghiệp và Môi trường" in agencies
    provinces = re.search(r'<section id="provinces".*?</section>', dom, re.S).group(0)
    assert len(re.findall(r'data-province="', provinces)) == 34  # the map: every unit in force
    assert len(re.findall(r'class="scorecard-row"', provinces)) >= 8
    assert "Tuyên Quang" in provinces and "TP Hà Nội" in provinces
    screenshot(url, "dashboard.png", tmp_path)


def test_a_scorecard_shows_its_lost_points(evaluation, regulation_id, tmp_path):
    url = f"{evaluation.dashboard_url}/scorecards/agency/bct?period={PERIOD}"
    dom = chromium("--dump-dom", url, tmp_path=tmp_path)
    reasons = re.findall(r'<tr class="lost-point" data-component="(\w+)">.*?<td>(.*?)</td>',
                         dom, re.S)
    assert ("timeliness", "Nhiệm vụ quá hạn: press-release (bct.communication), hạn "
            "2033-07-14") in reasons
    assert any(reason.startswith("Hoàn thành trễ hạn: press-release (bct.communication)")
               for _, reason in reasons)
    assert 'data-kpi="tasks_overdue"' in dom
    screenshot(url, "scorecard.png", tmp_path)


def test_a_regulation_timeline_and_the_overdue_list_render(evaluation, regulation_id,
                                                           tmp_path):
    url = f"{evaluation.dashboard_url}/regulations/{regulation_id}"
    dom = chromium("--dump-dom", url, tmp_path=tmp_path)
    assert "Đăng ký dự thảo «Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân»" in dom
    assert "Mở lấy ý kiến (c1) đến 2033-07-30" in dom
    assert len(re.findall(r"<li class=\"stage-communication\">", dom)) >= len(OUTCOMES)
    assert 'aria-label="Dòng thời gian"' in dom
    screenshot(url, "regulation.png", tmp_path)
    overdue = chromium("--dump-dom", f"{evaluation.dashboard_url}/overdue", tmp_path=tmp_path)
    owners = re.findall(r'<tr class="overdue-row">.*?</td>\s*<td>(?:[^<]*)</td>', overdue, re.S)
    assert owners
    # The page shows the oldest overdue tasks, which other tests' may be: the export has all.
    with urllib.request.urlopen(f"{evaluation.dashboard_url}/export/overdue.csv",
                                timeout=30) as reply:
        exported = list(csv.reader(io.StringIO(reply.read().decode("utf-8-sig"))))
    ours = {cell for row in exported if regulation_id in row for cell in row}
    for owner in ("baochinhphu", "cao-bang.commune-officers", "bnnmt.spokesperson"):
        assert owner in ours


def test_csv_exports_and_the_printable_report(evaluation, regulation_id):
    def get(path: str) -> tuple[str, str]:
        with urllib.request.urlopen(f"{evaluation.dashboard_url}{path}", timeout=30) as reply:
            return reply.headers["Content-Type"], reply.read().decode("utf-8")

    kind, rankings = get(f"/export/rankings.csv?kind=province&period={PERIOD}")
    assert kind == "text/csv; charset=utf-8" and rankings.startswith("\ufeffkind,period")
    assert "\r\nprovince,2033-07," in rankings and ",lai-chau,Lai Châu,100.00," in rankings
    _, lost = get(f"/export/lost-points.csv?kind=agency&subject=bct&period={PERIOD}")
    # One of two tasks overdue; timeliness, goes-first and coverage apply (65 nominal points).
    assert f"bct,2033-07,timeliness,{100 * 30 / 65 / 2:.4f},2033-07-14," in lost
    _, overdue = get("/export/overdue.csv")
    assert "bnnmt.spokesperson" in overdue
    kind, report = get(f"/report?period={PERIOD}")
    assert kind.startswith("text/html")
    assert "Báo cáo đánh giá truyền thông chính sách kỳ 2033-07" in report
    assert report.count('class="rankings"') == 2 and 'class="printable"' in report
    _, css = get("/static/dashboard.css")
    assert "@media print" in css
