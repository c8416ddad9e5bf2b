"""Lifecycle transitions over gRPC on the running service: each one stored and published,
illegal ones refused, bad input named field by field, retries applied once."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from policy.common.v1 import common_pb2
from policy.drafting.v1 import drafting_service_pb2 as api
from policykit.errors import field_violations
from services.drafting.tests.helpers import draft_in, events_of, key, register_request, types_of

DRAFTING, IN_CONSULTATION = api.DRAFT_STATE_DRAFTING, api.DRAFT_STATE_IN_CONSULTATION
ADOPTED, WITHDRAWN = api.DRAFT_STATE_ADOPTED, api.DRAFT_STATE_WITHDRAWN


def revise(regulation_id: str, **fields) -> api.ReviseDraftRequest:
    values = dict(change_summary="Bổ sung Điều 12 về giá đất")
    values.update(fields)
    return api.ReviseDraftRequest(idempotency_key=key(), regulation_id=regulation_id, **values)


def assess(regulation_id: str, **fields) -> api.RecordImpactAssessmentRequest:
    values = dict(impact_level=common_pb2.IMPACT_LEVEL_MEDIUM,
                  assessment_summary="Ảnh hưởng tới hộ nông dân ở vùng núi phía Bắc",
                  affected_groups=["nong-dan", "dong-bao-dan-toc-thieu-so"],
                  affected_province_codes=["tuyen-quang", "04"])
    values.update(fields)
    return api.RecordImpactAssessmentRequest(idempotency_key=key(), regulation_id=regulation_id,
                                             **values)


def submit(regulation_id: str) -> api.SubmitForConsultationRequest:
    return api.SubmitForConsultationRequest(idempotency_key=key(), regulation_id=regulation_id)


def adopt(regulation_id: str) -> api.AdoptDraftRequest:
    return api.AdoptDraftRequest(idempotency_key=key(), regulation_id=regulation_id)


def withdraw(regulation_id: str,
             reason: str = "Gộp vào dự án Luật Đất đai") -> api.WithdrawDraftRequest:
    return api.WithdrawDraftRequest(idempotency_key=key(), regulation_id=regulation_id,
                                    reason=reason)


# Each mutating call with the request it takes, given a regulation id.
CHANGES = {
    "ReviseDraft": revise,
    "RecordImpactAssessment": assess,
    "SubmitForConsultation": submit,
    "AdoptDraft": adopt,
    "WithdrawDraft": withdraw,
}
ALLOWED_IN = {
    "ReviseDraft": (DRAFTING, IN_CONSULTATION),
    "RecordImpactAssessment": (DRAFTING, IN_CONSULTATION),
    "SubmitForConsultation": (DRAFTING,),
    "AdoptDraft": (IN_CONSULTATION,),
    "WithdrawDraft": (DRAFTING, IN_CONSULTATION),
}


def call(stub, method: str, request):
    return getattr(stub, method)(request, timeout=10)


def refusal(stub, method: str, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, method, request)
    return caught.value


def test_a_draft_goes_through_consultation_to_adoption_and_each_change_is_published(
        stub, platform_topics):
    registered = stub.RegisterDraft(register_request(), timeout=10).draft
    regulation_id = registered.regulation_id
    revised = stub.ReviseDraft(revise(regulation_id, title="Luật Đất đai (sửa đổi) – dự thảo 2"),
                               timeout=10).draft
    assert (revised.state, revised.version) == (DRAFTING, 2)
    assert (revised.title, revised.summary) == ("Luật Đất đai (sửa đổi) – dự thảo 2",
                                                registered.summary)
    assessed = stub.RecordImpactAssessment(assess(regulation_id), timeout=10).draft
    assert assessed.impact_level == common_pb2.IMPACT_LEVEL_MEDIUM
    assert list(assessed.affected_province_codes) == ["tuyen-quang", "04"]
    submitted = stub.SubmitForConsultation(submit(regulation_id), timeout=10).draft
    assert submitted.state == IN_CONSULTATION
    # Consultation comments lead to a new version and a new assessment, which keeps the
    # affected groups and provinces it does not name.
    stub.ReviseDraft(revise(regulation_id, summary="Tiếp thu ý kiến Nhân dân"), timeout=10)
    stub.RecordImpactAssessment(assess(regulation_id, impact_level=common_pb2.IMPACT_LEVEL_HIGH,
                                       affected_groups=[], affected_province_codes=[]),
                                timeout=10)
    adopted = stub.AdoptDraft(adopt(regulation_id), timeout=10).draft
    assert (adopted.state, adopted.version) == (ADOPTED, 3)
    assert adopted.summary == "Tiếp thu ý kiến Nhân dân"
    assert adopted.impact_level == common_pb2.IMPACT_LEVEL_HIGH
    assert list(adopted.affected_province_codes) == ["tuyen-quang", "04"]
    assert stub.GetDraft(api.GetDraftRequest(regulation_id=regulation_id),
                         timeout=10).draft == adopted

    published = events_of(platform_topics, regulation_id, "DraftAdopted")
    assert types_of(published) == [
        "DraftRegistered", "DraftRevised", "ImpactAssessed", "DraftSubmittedForConsultation",
        "DraftRevised", "ImpactAssessed", "DraftAdopted"]
    assert {e.source for e in published} == {"policy/drafting"}
    first_revision, second_revision = published[1].payload, published[4].payload
    assert (first_revision.version, first_revision.title) == (2, revised.title)
    assert (second_revision.version, second_revision.summary) == (3, "Tiếp thu ý kiến Nhân dân")
    assert second_revision.change_summary == "Bổ sung Điều 12 về giá đất"
    assert published[2].payload.assessment_summary.startswith("Ảnh hưởng tới hộ nông dân")
    assert list(published[5].payload.affected_province_codes) == ["tuyen-quang", "04"]
    assert published[3].payload.version == 2
    assert published[6].payload.version == 3
    assert published[6].payload.adopted_at == adopted.updated_at


@pytest.mark.parametrize("state", [DRAFTING, IN_CONSULTATION], ids=api.DraftState.Name)
def test_a_draft_is_withdrawn_with_its_reason(stub, platform_topics, state):
    draft = draft_in(stub, state)
    withdrawn = stub.WithdrawDraft(withdraw(draft.regulation_id, "Trùng với dự án luật khác"),
                                   timeout=10).draft
    assert withdrawn.state == WITHDRAWN
    assert withdrawn.withdrawal_reason == "Trùng với dự án luật khác"
    published = events_of(platform_topics, draft.regulation_id, "DraftWithdrawn")
    assert published[-1].payload.reason == "Trùng với dự án luật khác"


@pytest.mark.parametrize("state, method", [
    (state, method) for state in (DRAFTING, IN_CONSULTATION, ADOPTED, WITHDRAWN)
    for method in CHANGES if state not in ALLOWED_IN[method]],
    ids=lambda v: v if isinstance(v, str) else api.DraftState.Name(v))
def test_illegal_transitions_are_refused_naming_the_state(stub, state, method):
    draft = draft_in(stub, state)
    error = refusal(stub, method, CHANGES[method](draft.regulation_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    allowed = ", ".join(api.DraftState.Name(s) for s in ALLOWED_IN[method])
    assert error.details() == (f"draft {draft.regulation_id} is {api.DraftState.Name(state)}; "
                               f"{method} is allowed only in {allowed}")
    assert stub.GetDraft(api.GetDraftRequest(regulation_id=draft.regulation_id),
                         timeout=10).draft == draft


@pytest.mark.parametrize("method", CHANGES)
def test_a_change_to_an_unknown_draft_is_not_found(stub, method):
    error = refusal(stub, method, CHANGES[method]("no-such-draft"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def with_page(page_size: int = 0, page_token: str = "", **filters) -> api.ListDraftsRequest:
    request = api.ListDraftsRequest(**filters)
    request.page.page_size, request.page.page_token = page_size, page_token
    return request


@pytest.mark.parametrize("method, request_, fields", [
    ("ReviseDraft", revise("r-1", change_summary=""), {"change_summary"}),
    ("ReviseDraft", revise("r-1", title="Lu?t ??t ?ai", summary="x" * 10_001),
     {"title", "summary"}),
    ("ReviseDraft", revise(""), {"regulation_id"}),
    ("RecordImpactAssessment", assess("r-1", impact_level=0, assessment_summary=""),
     {"impact_level", "assessment_summary"}),
    ("RecordImpactAssessment", assess("r-1", affected_province_codes=["02", "99"]),
     {"affected_province_codes[1]"}),
    ("RecordImpactAssessment", assess("r-1", affected_groups=["Nông dân"]), {"affected_groups[0]"}),
    ("SubmitForConsultation", submit("Dự thảo 1"), {"regulation_id"}),
    ("SubmitForConsultation", api.SubmitForConsultationRequest(regulation_id="r-1"),
     {"idempotency_key"}),
    ("AdoptDraft", api.AdoptDraftRequest(idempotency_key="k" * 201, regulation_id="r-1"),
     {"idempotency_key"}),
    ("WithdrawDraft", withdraw("r-1", reason="  "), {"reason"}),
    ("GetDraft", api.GetDraftRequest(), {"regulation_id"}),
    ("ListDrafts", with_page(page_token="bm90IGEgdG9rZW4="), {"page.page_token"}),
    ("ListDrafts", with_page(page_size=-5, state=7, impact_level=9),
     {"page.page_size", "state", "impact_level"}),
    ("ListDrafts", with_page(lead_agency_id="no-such-agency"), {"lead_agency_id"}),
], ids=lambda v: v if isinstance(v, str) else ",".join(sorted(v)) if isinstance(v, set) else "")
def test_invalid_input_names_the_fields(stub, method, request_, fields):
    error = refusal(stub, method, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(error)} == fields


# Each mutating call, with the state its draft is in beforehand.
RETRIED = [("ReviseDraft", DRAFTING), ("RecordImpactAssessment", DRAFTING),
           ("SubmitForConsultation", DRAFTING), ("AdoptDraft", IN_CONSULTATION),
           ("WithdrawDraft", IN_CONSULTATION)]
EVENT_OF = {"ReviseDraft": "DraftRevised", "RecordImpactAssessment": "ImpactAssessed",
            "SubmitForConsultation": "DraftSubmittedForConsultation",
            "AdoptDraft": "DraftAdopted", "WithdrawDraft": "DraftWithdrawn"}


@pytest.mark.parametrize("method, state", RETRIED, ids=[m for m, _ in RETRIED])
def test_a_retry_with_the_same_key_returns_the_first_response_and_changes_once(
        stub, platform_topics, method, state):
    draft = draft_in(stub, state)
    request = CHANGES[method](draft.regulation_id)
    first = call(stub, method, request)
    assert call(stub, method, request) == first
    assert stub.GetDraft(api.GetDraftRequest(regulation_id=draft.regulation_id),
                         timeout=10).draft == first.draft
    # The outbox publishes in order: once a later change is on the topic, a second copy of
    # the retried one would be there too.
    later = stub.RegisterDraft(register_request(), timeout=10).draft
    events_of(platform_topics, later.regulation_id, "DraftRegistered")
    published = events_of(platform_topics, draft.regulation_id, EVENT_OF[method])
    assert types_of(published).count(EVENT_OF[method]) == 1


def test_an_idempotency_key_serves_one_call_only(stub):
    draft = draft_in(stub, DRAFTING)
    request = revise(draft.regulation_id)
    stub.ReviseDraft(request, timeout=10)
    error = refusal(stub, "SubmitForConsultation", api.SubmitForConsultationRequest(
        idempotency_key=request.idempotency_key, regulation_id=draft.regulation_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [("idempotency_key", "already used for ReviseDraft")]


def test_concurrent_changes_to_one_draft_apply_one_after_the_other(stub):
    draft = draft_in(stub, IN_CONSULTATION)
    with ThreadPoolExecutor(max_workers=10) as pool:
        revisions = list(pool.map(lambda _: stub.ReviseDraft(
            revise(draft.regulation_id), timeout=10).draft.version, range(10)))
    assert sorted(revisions) == list(range(2, 12))

    ending = [adopt(draft.regulation_id), withdraw(draft.regulation_id)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(call, stub, method, request)
                   for method, request in zip(("AdoptDraft", "WithdrawDraft"), ending)]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result().draft.state)
        except grpc.RpcError as error:
            outcomes.append(error.code())
    assert sorted(outcomes, key=str) in (
        sorted([ADOPTED, grpc.StatusCode.FAILED_PRECONDITION], key=str),
        sorted([WITHDRAWN, grpc.StatusCode.FAILED_PRECONDITION], key=str))


def list_all(stub, **filters) -> list[list[api.Draft]]:
    """Follows next_page_token from the first page to the last; returns the pages."""
    pages, token = [], ""
    while True:
        response = stub.ListDrafts(with_page(page_token=token, **filters), timeout=10)
        pages.append(list(response.drafts))
        token = response.page.next_page_token
        if not token:
            return pages


def test_list_drafts_filters_and_pages_newest_first(stub):
    # Only this test registers drafts led by the Government Inspectorate.
    mine = [draft_in(stub, state, lead_agency_id="ttcp", impact_level=impact)
            for state, impact in [(DRAFTING, common_pb2.IMPACT_LEVEL_LOW),
                                  (IN_CONSULTATION, common_pb2.IMPACT_LEVEL_HIGH),
                                  (DRAFTING, common_pb2.IMPACT_LEVEL_HIGH),
                                  (ADOPTED, common_pb2.IMPACT_LEVEL_HIGH),
                                  (IN_CONSULTATION, common_pb2.IMPACT_LEVEL_LOW)]]
    ids = [d.regulation_id for d in mine]

    pages = list_all(stub, lead_agency_id="ttcp", page_size=2)
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    listed = [d.regulation_id for page in pages for d in page]
    assert len(listed) == len(set(listed))
    assert [i for i in listed if i in ids] == ids[::-1]
    assert {d.lead_agency_id for page in pages for d in page} == {"ttcp"}

    def listed_ids(**filters) -> set[str]:
        return {d.regulation_id for page in list_all(stub, lead_agency_id="ttcp", **filters)
                for d in page}

    assert listed_ids(state=IN_CONSULTATION) & set(ids) == {ids[1], ids[4]}
    assert listed_ids(impact_level=common_pb2.IMPACT_LEVEL_HIGH) & set(ids) == {
        ids[1], ids[2], ids[3]}
    assert listed_ids(state=DRAFTING, impact_level=common_pb2.IMPACT_LEVEL_HIGH) & set(ids) == {
        ids[2]}
    adopted = stub.ListDrafts(with_page(lead_agency_id="ttcp", state=ADOPTED), timeout=10)
    assert mine[3] in adopted.drafts
