"""Campaign detection on a fixture of near-duplicates: text signatures, the grouper (in
process, against the session's PostgreSQL), and totals that count a campaign once."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import pytest

from policy.common.v1 import common_pb2
from policy.consultation.v1 import events_pb2 as events
from policykit.reference import default as reference_data
from services.consultation import grouping, signatures, summary
from services.consultation.tests.helpers import PSEUDONYM_KEY, comment
from services.consultation.tests.test_windows import (  # noqa: F401 (fixtures)
    OPENED, intake, open_draft, settings)
from services.consultation.validation import CommentChecker

LETTER = ("Tôi đề nghị giữ nguyên quy định tại Điều 12 về bồi thường khi Nhà nước thu hồi đất"
          " nông nghiệp, không giảm mức hỗ trợ cho hộ gia đình trực tiếp sản xuất nông nghiệp.")
# The form letter as a campaign sends it: copied, greeted, signed, retyped, a word changed.
CAMPAIGN = [
    LETTER,
    LETTER,
    "  " + LETTER.replace(" ", "  ") + "  ",
    LETTER.upper(),
    "Kính gửi Ban soạn thảo, tôi là Nguyễn Văn An, cử tri xã Tân Lập. " + LETTER,
    LETTER.replace("giữ nguyên", "giữ"),
    LETTER + " Xin trân trọng cảm ơn.",
    signatures_free := ("Toi de nghi giu nguyen quy dinh tai Dieu 12 ve boi thuong khi Nha nuoc"
                        " thu hoi dat nong nghiep, khong giam muc ho tro cho ho gia dinh truc"
                        " tiep san xuat nong nghiep."),
]
INDEPENDENT = [
    # The same subject in other words: an opinion of its own, not the campaign.
    "Đề nghị giữ mức bồi thường đất nông nghiệp như hiện hành vì nông dân rất khó khăn.",
    "Cần công khai bảng giá đất hằng năm trên cổng thông tin của tỉnh.",
    "Tôi đồng ý với dự thảo.",
    "Tôi không đồng ý với dự thảo.",
    "Đề nghị rút ngắn thời gian cấp giấy chứng nhận quyền sử dụng đất lần đầu.",
]


def test_copies_share_an_exact_key_whatever_their_case_and_spacing():
    key = signatures.exact_key(LETTER)
    assert signatures.exact_key(CAMPAIGN[2]) == signatures.exact_key(CAMPAIGN[3]) == key
    assert signatures.exact_key(CAMPAIGN[5]) != key


def test_folding_ignores_case_diacritics_and_punctuation():
    assert signatures.fold(signatures_free) == signatures.fold(LETTER)
    assert signatures.fold("Tôi ĐỒNG Ý!!") == ["toi", "dong", "y"]
    # Text in another script keeps its words instead of folding to nothing.
    assert signatures.fold("土地法") == ["土地法"]


@pytest.mark.parametrize("variant", CAMPAIGN[4:], ids=["greeted", "word changed", "signed",
                                                      "without diacritics"])
def test_near_identical_letters_resemble_and_share_a_band(variant):
    a = signatures.minhash(signatures.fold(LETTER))
    b = signatures.minhash(signatures.fold(variant))
    assert signatures.resemblance(a, b) >= signatures.NEAR_DUPLICATE
    assert set(signatures.band_keys(a)) & set(signatures.band_keys(b))


@pytest.mark.parametrize("other", INDEPENDENT[:2] + INDEPENDENT[3:4],
                         ids=["same subject", "other subject", "opposite opinion"])
def test_other_texts_do_not_resemble(other):
    base = INDEPENDENT[2] if other == INDEPENDENT[3] else LETTER
    a = signatures.minhash(signatures.fold(base))
    b = signatures.minhash(signatures.fold(other))
    assert signatures.resemblance(a, b) < signatures.NEAR_DUPLICATE


@pytest.fixture(params=["thread", "process"])
def signer(request):
    """Where the grouper signs and places texts: a worker thread, or a process of its own as
    in the service (its arguments and results then cross a pickle)."""
    if request.param == "thread":
        yield None
        return
    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


async def test_near_duplicates_form_one_campaign_counted_once(pool, settings, intake,  # noqa: F811
                                                              signer):
    await open_draft(pool, settings, "d-1")
    checker = CommentChecker(PSEUDONYM_KEY.encode(), reference_data())
    provinces = ["01", "tp-ha-noi", "79", "02"]
    sent = [comment("d-1", text, article_ref="Điều 12", province_code=provinces[n % 4])
            for n, text in enumerate(CAMPAIGN)]
    sent += [comment("d-1", text, article_ref="Khoản 2 Điều 12", province_code="79",
                     stakeholder_type=common_pb2.STAKEHOLDER_TYPE_BUSINESS)
             for text in INDEPENDENT]
    sent.append(comment("d-1", "Th? t??ng c?n xem l?i", article_ref="Điều 12"))
    sent.append(comment("d-1", "Đề nghị bổ sung định nghĩa đất ở.", article_ref="Điều 3"))
    intake.clock.now = OPENED + timedelta(hours=1)
    outcomes = await (await intake.submit(
        [checker.prepare(c, intake.clock.now.date()) for c in sent]))
    assert all(outcome.comment_id for outcome in outcomes)

    while await grouping.group_pending(pool, limit=3,  # a few at a time, as under load
                                       signer=signer):
        pass
    async with pool.acquire() as conn:
        groups = await conn.fetch(
            "SELECT t.group_id, count(*) AS comments FROM comments c JOIN texts t"
            " USING (consultation_id, text_key) WHERE NOT c.flagged_corrupted"
            " GROUP BY t.group_id ORDER BY comments DESC")
        assert [g["comments"] for g in groups] == [len(CAMPAIGN)] + [1] * (len(INDEPENDENT) + 1)
        await conn.execute("UPDATE consultations SET state = 2, closed_at = $1,"
                           " closing_reason = 1", OPENED + timedelta(days=60))
        consultation = await conn.fetchrow("SELECT * FROM consultations")
        closed = await summary.summarise(conn, consultation)

    singles = len(INDEPENDENT) + 1
    assert (closed.total_comments, closed.flagged_comments) == (len(sent), 1)
    assert (closed.campaigns, closed.campaign_comments) == (1, len(CAMPAIGN))
    assert closed.independent_opinions == singles + 1
    by_article = {c.key: c for c in closed.by_article}
    assert list(by_article) == ["Điều 3", "Điều 12"]
    assert (by_article["Điều 12"].comments, by_article["Điều 12"].campaign_comments,
            by_article["Điều 12"].independent_opinions) == (
        len(CAMPAIGN) + len(INDEPENDENT), len(CAMPAIGN), len(INDEPENDENT) + 1)
    by_type = {c.key: c.independent_opinions for c in closed.by_stakeholder_type}
    assert by_type == {"STAKEHOLDER_TYPE_CITIZEN": 2, "STAKEHOLDER_TYPE_BUSINESS": 5}
    by_province = {c.key: (c.comments, c.independent_opinions) for c in closed.by_province}
    # 2008 codes count under the 2025 units they became: 01 is tp-ha-noi, 02 tuyen-quang.
    assert by_province == {"tp-ha-noi": (4, 1), "tuyen-quang": (3, 2),
                           "tp-ho-chi-minh": (2 + len(INDEPENDENT), 1 + len(INDEPENDENT))}
    assert closed.reason == events.CLOSING_REASON_WINDOW_ENDED
