"""Field checks of drafting changes and list requests, as pure logic."""

from datetime import datetime, timezone

import pytest

from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import events_pb2 as events
from policykit.errors import FieldViolations
from services.drafting import storage
from services.drafting.validation import MAX_PAGE_SIZE, check_change, parse_list_request


def registered(**overrides) -> events.DraftRegistered:
    fields = dict(regulation_id="luat-dat-dai-2025", regulation_type=common_pb2.REGULATION_TYPE_LAW,
                  title="Luật Đất đai (sửa đổi)", lead_agency_id="bnnmt",
                  impact_level=common_pb2.IMPACT_LEVEL_HIGH, affected_province_codes=["02"])
    fields.update(overrides)
    return events.DraftRegistered(**fields)


def violated_fields(check, message) -> set[str]:
    with pytest.raises(FieldViolations) as caught:
        check(message)
    return {field for field, _ in caught.value.violations}


@pytest.mark.parametrize("change", [
    registered(),
    registered(lead_agency_id="ubdt", affected_province_codes=["02", "tuyen-quang"], version=1),
    events.DraftRevised(regulation_id="r-1", change_summary="Bổ sung Điều 5"),
    events.ImpactAssessed(regulation_id="r-1", impact_level=common_pb2.IMPACT_LEVEL_LOW,
                          assessment_summary="Tác động hẹp", affected_province_codes=["lai-chau"]),
    events.DraftSubmittedForConsultation(regulation_id="r-1", version=2),
    events.DraftAdopted(regulation_id="r-1"),
    events.DraftWithdrawn(regulation_id="r-1", reason="Gộp vào dự án luật khác"),
], ids=lambda change: type(change).__name__)
def test_valid_changes_pass(change):
    check_change(change)


@pytest.mark.parametrize("change, fields", [
    (registered(regulation_id="Luật 1"), {"regulation_id"}),
    (registered(title=" "), {"title"}),
    (registered(lead_agency_id="nobody"), {"lead_agency_id"}),
    (registered(lead_agency_id="ttxvn"), {"lead_agency_id"}),
    (registered(affected_province_codes=["02", "63", "02"]),
     {"affected_province_codes[1]", "affected_province_codes[2]"}),
    (registered(version=2), {"version"}),
    (events.DraftRevised(regulation_id="r-1", title="Th? t??ng"), {"change_summary", "title"}),
    (events.DraftRevised(regulation_id="r-1", change_summary="x", version=-1), {"version"}),
    (events.ImpactAssessed(regulation_id="r-1", affected_groups=["Nông dân"]),
     {"impact_level", "assessment_summary", "affected_groups[0]"}),
    (events.DraftSubmittedForConsultation(), {"regulation_id"}),
    (events.DraftWithdrawn(regulation_id="r-1", reason="a\x00b"), {"reason"}),
], ids=lambda v: type(v).__name__ if not isinstance(v, set) else ",".join(sorted(v)))
def test_invalid_changes_name_each_bad_field(change, fields):
    assert violated_fields(check_change, change) == fields


def test_a_list_request_gets_defaults_and_a_capped_page_size():
    query = parse_list_request(api.ListDraftsRequest())
    assert (query.page_size, query.after, query.lead_agency_id, query.state) == (50, None, "", 0)
    big = api.ListDraftsRequest()
    big.page.page_size = 10_000
    assert parse_list_request(big).page_size == MAX_PAGE_SIZE


def test_a_page_token_carries_where_the_next_page_starts():
    created_at = datetime(2025, 7, 1, 8, 30, 0, 123456, tzinfo=timezone.utc)
    request = api.ListDraftsRequest()
    request.page.page_token = storage.encode_page_token(created_at, "luat-dat-dai")
    assert parse_list_request(request).after == (created_at, "luat-dat-dai")


@pytest.mark.parametrize("token", [
    "not a token", "bm90IGpzb24=", storage.encode_page_token(datetime(2025, 1, 1), "x"),
    "WzEsIDJd",  # [1, 2]
])
def test_a_bad_page_token_is_refused_on_its_field(token):
    request = api.ListDraftsRequest(lead_agency_id="vtv", state=9)
    request.page.page_token = token
    request.page.page_size = -1
    assert violated_fields(parse_list_request, request) == {
        "page.page_token", "page.page_size", "lead_agency_id", "state"}
