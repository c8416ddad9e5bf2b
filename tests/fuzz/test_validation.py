"""Every service's checks of what callers and producers send, as pure logic, against requests
and events of every type with random fields (tests/fuzz/strategies.py): each check accepts or
refuses with the domain's declared errors — FieldViolations naming fields, NotFound,
FailedPrecondition, or RejectedEvent for a consumed event — and what it accepts is NFC.

Requests are checked as the services receive them: after policykit.grpc_server refused the
ill-formed ones (policykit.wellformed), and consumed events after policykit.envelope did."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import astuple
from datetime import date, datetime, timezone

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from policy.communication.v1 import task_service_pb2 as tasks_api
from policy.consultation.v1 import consultation_service_pb2 as consultation_api
from policy.drafting.v1 import drafting_service_pb2 as drafting_api
from policy.drafting.v1 import events_pb2 as drafting_events
from policy.evaluation.v1 import evaluation_service_pb2 as evaluation_api
from policy.publication.v1 import publication_service_pb2 as publication_api
from policykit.envelope import EnvelopeError, from_record
from policykit.errors import FailedPrecondition, FieldViolations, NotFound
from policykit.kafka_io import RejectedEvent
from policykit.reference import UnknownReference
from policykit.reference import default as reference_data
from policykit.text import has_control_characters
from policykit.wellformed import normalize_message, problems
from services.communication import servicer as task_servicer
from services.communication import tasks
from services.consultation import validation as consultation
from services.drafting import changes
from services.drafting import intake as drafting_intake
from services.drafting import validation as drafting
from services.evaluation import servicer as evaluation
from services.evaluation.handlers import Evaluation
from services.evaluation.surge import SurgeRule
from services.evaluation.units import Units
from services.publication import validation as publication
from tests.fuzz import seeds, strategies
from tests.fuzz.profiles import examples
from tests.fuzz.messages import is_nfc

DOMAIN_ERRORS = (FieldViolations, NotFound, FailedPrecondition)
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SEEDS = seeds.requests(now=NOW)


def requests(message_type: type[Message]) -> st.SearchStrategy[Message]:
    """Requests of the type, random or a valid one varied, as a servicer gets them:
    well-formed (policykit.grpc_server refuses the rest)."""
    return (strategies.messages(message_type.DESCRIPTOR)
            | strategies.variations(SEEDS[message_type])).filter(lambda m: not problems(m))


def refused_or_accepted(check, *args):
    """Runs a check; returns its result, or None when it refused with a domain error."""
    try:
        return check(*args)
    except DOMAIN_ERRORS as error:
        if isinstance(error, FieldViolations):
            assert error.violations and all(field and why for field, why in error.violations)
        return None


# Drafting: each mutating request becomes the drafting event that records it (servicer.py).
DRAFTING_CHANGES = {
    drafting_api.RegisterDraftRequest: drafting_events.DraftRegistered,
    drafting_api.ReviseDraftRequest: drafting_events.DraftRevised,
    drafting_api.RecordImpactAssessmentRequest: drafting_events.ImpactAssessed,
    drafting_api.SubmitForConsultationRequest: drafting_events.DraftSubmittedForConsultation,
    drafting_api.AdoptDraftRequest: drafting_events.DraftAdopted,
    drafting_api.WithdrawDraftRequest: drafting_events.DraftWithdrawn,
}


@examples(200)
@given(st.sampled_from(list(DRAFTING_CHANGES)).flatmap(
    lambda request_type: st.tuples(st.just(request_type), requests(request_type))))
def test_drafting_requests(typed_request):
    request_type, request = typed_request
    change = DRAFTING_CHANGES[request_type](regulation_id="6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10")
    normalize_message(changes.copy_fields(request, change))
    if refused_or_accepted(drafting.check_change, change) is None:
        return
    for field, limit in (("title", drafting.MAX_TITLE), ("summary", drafting.MAX_SUMMARY)):
        if field in change.DESCRIPTOR.fields_by_name:
            assert len(getattr(change, field)) <= limit
    assert is_nfc(change)


def drafting_event(request_type: type[Message]) -> Message:
    """The drafting event the seed request of the type becomes."""
    return changes.copy_fields(SEEDS[request_type],
                               DRAFTING_CHANGES[request_type](regulation_id="luat-dat-dai-2025"))


intake_records = strategies.sound_records(st.sampled_from(list(DRAFTING_CHANGES)).flatmap(
    lambda request_type: strategies.variations(drafting_event(request_type))))


@examples(200)
@given(strategies.records | intake_records | strategies.mutated_records(intake_records))
def test_drafting_intake_events(record):
    """What a drafting system produces to policy.drafting-intake.v1, as the intake checks it."""
    try:
        event = from_record(*record)
    except EnvelopeError:
        return
    try:
        drafting_intake._check_envelope(event)
    except RejectedEvent as error:
        assert error.reason
        return
    if refused_or_accepted(drafting.check_change, event.payload) is not None:
        assert is_nfc(event.payload)


@examples(100)
@given(requests(drafting_api.GetDraftRequest), requests(drafting_api.ListDraftsRequest))
def test_drafting_reads(get, listing):
    refused_or_accepted(drafting.check_get, get)
    query = refused_or_accepted(drafting.parse_list_request, listing)
    assert query is None or 0 < query.page_size <= drafting.MAX_PAGE_SIZE


# Consultation: comments arrive one by one or in a bulk stream, whose messages no boundary
# check sees — CommentChecker refuses on its own what no table can store.
@pytest.fixture(scope="module")
def checker() -> consultation.CommentChecker:
    return consultation.CommentChecker(b"fuzz-pseudonym-key", reference_data())


@examples(300)
@given(strategies.messages(consultation_api.Comment.DESCRIPTOR)
       | strategies.variations(SEEDS[consultation_api.SubmitCommentRequest].comment))
def test_comments(checker, comment):
    prepared = refused_or_accepted(checker.prepare, comment, date(2026, 6, 1))
    if prepared is None:
        return
    stored = [value for value in astuple(prepared) if isinstance(value, str)]
    stored += prepared.contact
    assert not any(has_control_characters(value) for value in stored)
    # An idempotency key is the caller's token, compared byte for byte: kept as sent.
    stored.remove(prepared.idempotency_key)
    assert all(unicodedata.is_normalized("NFC", value) for value in stored)
    assert 0 < len(prepared.text) <= consultation.MAX_TEXT
    assert prepared.flagged == consultation.looks_corrupted(prepared.text)


@examples(150)
@given(requests(consultation_api.ExtendConsultationRequest),
       requests(consultation_api.AnswerCommentsRequest),
       requests(consultation_api.ListCommentsRequest))
def test_consultation_requests(extension, answer, listing):
    reason = refused_or_accepted(consultation.check_extension, extension)
    assert reason is None or unicodedata.is_normalized("NFC", reason)
    accepted = refused_or_accepted(consultation.check_answer, answer)
    assert accepted is None or unicodedata.is_normalized("NFC", accepted.explanation)
    violations = FieldViolations()
    size = consultation.page_size(violations, listing.page)
    assert violations.violations or 0 < size <= consultation.MAX_PAGE_SIZE
    for kinds in ((int, uuid.UUID), (uuid.UUID,)):
        consultation.decode_token(violations, listing.page.page_token, kinds)
    refused_or_accepted(consultation.check_regulation, listing)


# Publication: the servicer normalises, then checks against its clock.
PUBLICATION_CHECKS = {
    publication_api.RecordPromulgationRequest: lambda r: publication.check_promulgation(r, NOW),
    publication_api.AmendRegulationRequest: publication.check_amendment,
    publication_api.RepealRegulationRequest: publication.check_repeal,
    publication_api.IssueSpokespersonReleaseRequest: publication.check_release,
    publication_api.GetTimelineRequest: publication.parse_timeline_request,
}


@examples(200)
@given(st.sampled_from(list(PUBLICATION_CHECKS)).flatmap(requests))
def test_publication_requests(request):
    normalize_message(request)
    if refused_or_accepted(PUBLICATION_CHECKS[type(request)], request) is not None:
        assert is_nfc(request)


# Communication: the task actions and the page token of ListTasks.
TASK_ACTIONS = {tasks_api.AcceptTaskRequest: "AcceptTask",
                tasks_api.ReportProgressRequest: "ReportProgress",
                tasks_api.CompleteTaskRequest: "CompleteTask",
                tasks_api.CancelTaskRequest: "CancelTask"}


@examples(150)
@given(st.sampled_from(list(TASK_ACTIONS)).flatmap(requests),
       requests(tasks_api.ListTasksRequest))
def test_task_requests(request, listing):
    refused_or_accepted(tasks.validate, TASK_ACTIONS[type(request)], request)
    refused_or_accepted(task_servicer._after, listing.page.page_token)


# Evaluation: the scope of scorecard queries, and the checks of consumed events.
@pytest.fixture(scope="module")
def units() -> Units:
    return Units(reference_data())


@examples(100)
@given(requests(evaluation_api.GetScorecardRequest))
def test_scorecard_scopes(units, request):
    violations = FieldViolations()
    scope = evaluation.check_scope(violations, request.kind, request.period, request.report_date)
    if scope is not None:
        try:
            units.check_subject(scope.kind, request.subject_id, scope.report_date)
        except UnknownReference:
            pass
        assert 2000 <= scope.period.months[0].year <= 2100


@examples(200)
@given(strategies.records)
def test_evaluation_event_checks(units, record):
    try:
        event = from_record(*record)
    except EnvelopeError:
        return
    try:
        Evaluation(pool=None, units=units, surge_rule=SurgeRule()).check(event)
    except RejectedEvent as error:
        assert error.reason
