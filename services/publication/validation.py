"""Checks of the PublicationService requests, NFC-normalised before they get here; every
problem is reported with the field it concerns."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from policy.publication.v1 import publication_service_pb2 as api
from policykit.errors import FieldViolations
from policykit.text import looks_corrupted

from services.publication import timeline
from services.publication.effective_dates import VIETNAM
from services.publication.storage import optional_time

MAX_NAME = 300       # a signer, a gazette issue, a headline, an article reference
MAX_NOTE = 2_000     # an override reason
MAX_BODY = 20_000    # a release's text
MAX_ARTICLES = 200
# How far ahead of the service's clock a time "now" may be: the caller's clock may run ahead.
CLOCK_TOLERANCE = timedelta(minutes=1)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Number/year/form-issuer: "15/2026/NĐ-CP", "31/2026/QH15", "12/2026/NQ-HĐND",
# "05/2026/TTLT-BTC-BNV".
_DOCUMENT_NUMBER = re.compile(r"^(\d{1,4})/(\d{4})/[A-ZĐ][A-ZĐ0-9]*(?:-[A-ZĐ][A-ZĐ0-9]*)*$")


def _text(violations: FieldViolations, field: str, value: str, limit: int, *,
          required: bool = True) -> None:
    if not value.strip():
        if required:
            violations.add(field, "must not be empty")
    elif len(value) > limit:
        violations.add(field, f"must be at most {limit} characters, got {len(value)}")
    elif looks_corrupted(value):
        violations.add(field, "text looks corrupted ('?' or U+FFFD in place of letters, or "
                              "mojibake); resend it as UTF-8")


def _regulation_id(violations: FieldViolations, field: str, value: str) -> None:
    if not _ID.match(value):
        violations.add(field, "must be a regulation id: 1 to 64 characters a-z, 0-9 and '-'")


def _time(violations: FieldViolations, message, field: str, now: datetime, *,
          not_before: datetime | None = None, not_before_field: str = "") -> datetime | None:
    """Checks a required timestamp is not in the future (nor before `not_before`); returns
    it, or None when it is not, so that no other check uses it."""
    value = optional_time(message, field)
    if value is None:
        violations.add(field, "must be set")
    elif value > now + CLOCK_TOLERANCE:
        violations.add(field, f"must not be in the future, got {value.isoformat()}")
    elif not_before is not None and value < not_before:
        violations.add(field, f"must not be before {not_before_field}")
    else:
        return value
    return None


def _document_number(violations: FieldViolations, number: str, signed_at: datetime | None) -> None:
    match = _DOCUMENT_NUMBER.match(number)
    if not match or int(match[1]) == 0:
        violations.add("document_number", "must be number/year/form-issuer in capitals, e.g. "
                                          "15/2026/NĐ-CP or 31/2026/QH15")
    elif signed_at is not None and int(match[2]) != signed_at.astimezone(VIETNAM).year:
        violations.add("document_number", f"carries the year {match[2]} but was signed in "
                                          f"{signed_at.astimezone(VIETNAM).year}")


def check_promulgation(request: api.RecordPromulgationRequest, now: datetime) -> None:
    """Validates a RecordPromulgation request against the service's clock."""
    violations = FieldViolations()
    _regulation_id(violations, "regulation_id", request.regulation_id)
    signed_at = _time(violations, request, "signed_at", now)
    _document_number(violations, request.document_number, signed_at)
    _text(violations, "signer", request.signer, MAX_NAME)
    _text(violations, "gazette_number", request.gazette_number, MAX_NAME)
    _time(violations, request, "gazette_published_at", now, not_before=signed_at,
          not_before_field="signed_at")
    effective_at = optional_time(request, "effective_at")
    if effective_at is None:
        if request.effective_date_override_reason:
            violations.add("effective_date_override_reason",
                           "is only for an effective_at that overrides the rule; set "
                           "effective_at or leave the reason empty")
    else:
        if signed_at is not None and effective_at < signed_at:
            violations.add("effective_at", "must not be before signed_at")
        _text(violations, "effective_date_override_reason",
              request.effective_date_override_reason, MAX_NOTE)
    violations.raise_if_any()


def _check_link(request, by_field: str) -> None:
    violations = FieldViolations()
    _regulation_id(violations, "regulation_id", request.regulation_id)
    _regulation_id(violations, by_field, getattr(request, by_field))
    if request.regulation_id == getattr(request, by_field):
        violations.add(by_field, "must be another regulation than regulation_id")
    for index, article in enumerate(getattr(request, "amended_articles", ())):
        _text(violations, f"amended_articles[{index}]", article, MAX_NAME)
    if len(getattr(request, "amended_articles", ())) > MAX_ARTICLES:
        violations.add("amended_articles", f"must have at most {MAX_ARTICLES} entries")
    violations.raise_if_any()


def check_amendment(request: api.AmendRegulationRequest) -> None:
    _check_link(request, "amended_by_regulation_id")


def check_repeal(request: api.RepealRegulationRequest) -> None:
    _check_link(request, "repealed_by_regulation_id")


def check_release(request: api.IssueSpokespersonReleaseRequest) -> None:
    violations = FieldViolations()
    _regulation_id(violations, "regulation_id", request.regulation_id)
    _text(violations, "headline", request.headline, MAX_NAME)
    _text(violations, "body", request.body, MAX_BODY)
    violations.raise_if_any()


def parse_timeline_request(request: api.GetTimelineRequest) -> tuple[int, timeline.Position | None]:
    """Returns (page size, position after which the page starts)."""
    violations = FieldViolations()
    _regulation_id(violations, "regulation_id", request.regulation_id)
    if request.page.page_size < 0:
        violations.add("page.page_size", f"must not be negative, got {request.page.page_size}")
    after = None
    if request.page.page_token:
        try:
            after = timeline.decode_position(request.page.page_token)
        except ValueError:
            violations.add("page.page_token",
                           "is not a next_page_token of GetTimeline; pass it back unchanged")
    violations.raise_if_any()
    size = min(request.page.page_size or timeline.DEFAULT_PAGE_SIZE, timeline.MAX_PAGE_SIZE)
    return size, after
