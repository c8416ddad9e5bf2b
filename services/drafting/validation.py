"""Checks of drafting changes, whether requested over gRPC or produced to the intake topic;
every problem is reported with the field it concerns. A gRPC request and the drafting event
it becomes share their field names, so one check serves both ways in."""

from __future__ import annotations

import re
from typing import Callable

from google.protobuf.message import Message

from policy.drafting.v1 import drafting_service_pb2 as api
from policy.drafting.v1 import events_pb2 as events
from policykit import wellformed
from policykit.errors import FieldViolations
from policykit.reference import UnknownReference, default
from policykit.text import looks_corrupted

from services.drafting import storage

MAX_TITLE = 500
MAX_SUMMARY = 10_000
MAX_NOTE = 2_000  # a change summary or a withdrawal reason
MAX_LIST = 200
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Kinds of agency that lead drafting; press agencies are commissioned, never lead.
LEAD_AGENCY_KINDS = ("ministry", "ministerial-agency")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _check_text(violations: FieldViolations, field: str, value: str, limit: int,
                required: bool) -> None:
    if not value.strip():
        if required:
            violations.add(field, "must not be empty")
        return
    if len(value) > limit:
        violations.add(field, f"must be at most {limit} characters, got {len(value)}")
    if looks_corrupted(value):
        violations.add(field, "text looks corrupted ('?' or U+FFFD in place of letters, or "
                              "mojibake); resend it as UTF-8")


def _check_enum(violations: FieldViolations, message: Message, field: str, *,
                required: bool = True) -> None:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    value = getattr(message, field)
    if (value == 0 and required) or value not in enum.values_by_number:
        names = ", ".join(v.name for v in enum.values if v.number)
        violations.add(field, f"must be one of {names}")


def _group_problem(group: str) -> str | None:
    return None if _ID.match(group) else f"{group!r} is not a lowercase id (a-z, 0-9, -)"


def _province_problem(code: str) -> str | None:
    # Two-digit codes of the 2008 units or slugs of the 2025 ones: a draft keeps the codes
    # its drafting system knows, and consumers resolve them by date.
    try:
        default().province(code)
    except UnknownReference as error:
        return str(error)
    return None


def _check_list(violations: FieldViolations, field: str, values,
                problem: Callable[[str], str | None]) -> None:
    """Checks a list field; each bad entry is named by its index, e.g. `field[1]`."""
    if len(values) > MAX_LIST:
        violations.add(field, f"must have at most {MAX_LIST} entries")
    seen = set()
    for index, value in enumerate(values):
        found = f"{value!r} is listed twice" if value in seen else problem(value)
        if found:
            violations.add(f"{field}[{index}]", found)
        seen.add(value)


def _check_audience(violations: FieldViolations, change: Message) -> None:
    _check_list(violations, "affected_groups", change.affected_groups, _group_problem)
    _check_list(violations, "affected_province_codes", change.affected_province_codes,
                _province_problem)


def _check_lead_agency(violations: FieldViolations, agency_id: str) -> None:
    # An agency merged away in 2025 is still accepted: the draft keeps the id it was
    # registered with, and consumers resolve the successor by date.
    if not agency_id:
        violations.add("lead_agency_id", "must be an agency id from the reference data, e.g. 'bnv'")
        return
    try:
        agency = default().agency(agency_id)
    except UnknownReference as error:
        violations.add("lead_agency_id", f"{error}; use an id from the reference data, e.g. 'bnv'")
        return
    if agency.kind not in LEAD_AGENCY_KINDS:
        violations.add("lead_agency_id", f"{agency_id!r} is a {agency.kind}; a draft is led by "
                                         f"a {' or '.join(LEAD_AGENCY_KINDS)}")


def _check_regulation_id(violations: FieldViolations, regulation_id: str) -> None:
    if not regulation_id:
        violations.add("regulation_id", "must not be empty")
    elif not _ID.match(regulation_id):
        violations.add("regulation_id", "must be 1 to 64 characters a-z, 0-9 and '-', "
                                        "starting with a letter or digit")


def _check_version(violations: FieldViolations, version: int, *,
                   at_most: int | None = None) -> None:
    # 0 leaves the version to the service; anything else is checked against the draft.
    if version < 0 or (at_most is not None and version > at_most):
        bound = f"0 or {at_most}" if at_most is not None else "0 or more"
        violations.add("version", f"must be {bound}, got {version}")


def _check_registered(violations: FieldViolations, registered: events.DraftRegistered) -> None:
    _check_enum(violations, registered, "regulation_type")
    _check_enum(violations, registered, "impact_level")
    _check_text(violations, "title", registered.title, MAX_TITLE, required=True)
    _check_text(violations, "summary", registered.summary, MAX_SUMMARY, required=False)
    _check_lead_agency(violations, registered.lead_agency_id)
    _check_audience(violations, registered)
    planned = ("planned_consultation_start", "planned_adoption")
    if (all(registered.HasField(field) for field in planned)
            and registered.planned_adoption.ToDatetime()
            < registered.planned_consultation_start.ToDatetime()):
        violations.add("planned_adoption", "must not be before planned_consultation_start")
    _check_version(violations, registered.version, at_most=1)


def _check_revised(violations: FieldViolations, revised: events.DraftRevised) -> None:
    _check_text(violations, "change_summary", revised.change_summary, MAX_NOTE, required=True)
    _check_text(violations, "title", revised.title, MAX_TITLE, required=False)
    _check_text(violations, "summary", revised.summary, MAX_SUMMARY, required=False)
    _check_version(violations, revised.version)


def _check_assessed(violations: FieldViolations, assessed: events.ImpactAssessed) -> None:
    _check_enum(violations, assessed, "impact_level")
    _check_text(violations, "assessment_summary", assessed.assessment_summary, MAX_SUMMARY,
                required=True)
    _check_audience(violations, assessed)


def _check_versioned(violations: FieldViolations,
                     change: events.DraftSubmittedForConsultation | events.DraftAdopted) -> None:
    _check_version(violations, change.version)


def _check_withdrawn(violations: FieldViolations, withdrawn: events.DraftWithdrawn) -> None:
    _check_text(violations, "reason", withdrawn.reason, MAX_NOTE, required=True)


_CHECKS: dict[type[Message], Callable[[FieldViolations, Message], None]] = {
    events.DraftRegistered: _check_registered,
    events.DraftRevised: _check_revised,
    events.ImpactAssessed: _check_assessed,
    events.DraftSubmittedForConsultation: _check_versioned,
    events.DraftAdopted: _check_versioned,
    events.DraftWithdrawn: _check_withdrawn,
}
CHANGE_TYPES = tuple(_CHECKS)


def check_change(change: Message) -> None:
    """Validates a drafting event's own fields, NFC-normalised; raises FieldViolations naming
    each bad field. Control characters and impossible times are refused before a change
    gets here, over gRPC and on the intake topic alike, and again here, in the same words."""
    violations = FieldViolations()
    for field, problem in wellformed.problems(change):
        violations.add(field, problem)
    violations.raise_if_any()  # the checks below read the times
    _check_regulation_id(violations, change.regulation_id)
    _CHECKS[type(change)](violations, change)
    violations.raise_if_any()


def check_get(request: api.GetDraftRequest) -> None:
    violations = FieldViolations()
    _check_regulation_id(violations, request.regulation_id)
    violations.raise_if_any()


def parse_list_request(request: api.ListDraftsRequest) -> storage.DraftQuery:
    """Turns a ListDrafts request into a query; raises FieldViolations naming each bad field."""
    violations = FieldViolations()
    if request.lead_agency_id:
        _check_lead_agency(violations, request.lead_agency_id)
    _check_enum(violations, request, "state", required=False)
    _check_enum(violations, request, "impact_level", required=False)
    if request.page.page_size < 0:
        violations.add("page.page_size", f"must not be negative, got {request.page.page_size}")
    after = None
    if request.page.page_token:
        try:
            after = storage.decode_page_token(request.page.page_token)
        except ValueError:
            violations.add("page.page_token",
                           "is not a next_page_token of ListDrafts; pass it back unchanged")
    violations.raise_if_any()
    return storage.DraftQuery(
        lead_agency_id=request.lead_agency_id, state=request.state,
        impact_level=request.impact_level,
        page_size=min(request.page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), after=after)
