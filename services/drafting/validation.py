"""Checks of drafting requests and of drafting events produced straight to the topic; every
problem is reported with the field it concerns."""

from __future__ import annotations

import re

from google.protobuf.message import Message

from policykit.errors import FieldViolations
from policykit.text import looks_corrupted

MAX_TITLE = 500
MAX_SUMMARY = 10_000
MAX_LIST = 200
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
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        violations.add(field, "must not contain control characters")


def _check_enum(violations: FieldViolations, message: Message, field: str) -> None:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    value = getattr(message, field)
    if value == 0 or value not in enum.values_by_number:
        names = ", ".join(v.name for v in enum.values if v.number)
        violations.add(field, f"must be one of {names}")


def _check_ids(violations: FieldViolations, field: str, values) -> None:
    if len(values) > MAX_LIST:
        violations.add(field, f"must have at most {MAX_LIST} entries")
    for index, value in enumerate(values):
        if not _ID.match(value):
            violations.add(f"{field}[{index}]", f"{value!r} is not a lowercase id (a-z, 0-9, -)")


def check_draft_fields(message: Message) -> None:
    """Validates the fields a draft is registered with (RegisterDraftRequest or the
    DraftRegistered event); raises FieldViolations naming each bad field."""
    violations = FieldViolations()
    _check_enum(violations, message, "regulation_type")
    _check_enum(violations, message, "impact_level")
    _check_text(violations, "title", message.title, MAX_TITLE, required=True)
    _check_text(violations, "summary", message.summary, MAX_SUMMARY, required=False)
    if not _ID.match(message.lead_agency_id):
        violations.add("lead_agency_id", "must be an agency id from the reference data, e.g. 'bnv'")
    _check_ids(violations, "affected_groups", message.affected_groups)
    # Province codes are two digits (before 2025) or slugs (from 2025-07-01).
    _check_ids(violations, "affected_province_codes", message.affected_province_codes)
    if (message.HasField("planned_consultation_start") and message.HasField("planned_adoption")
            and message.planned_adoption.ToDatetime() < message.planned_consultation_start.ToDatetime()):
        violations.add("planned_adoption", "must not be before planned_consultation_start")
    violations.raise_if_any()


def check_idempotency_key(key: str) -> None:
    if not key or len(key) > 200:
        violations = FieldViolations()
        violations.add("idempotency_key", "must be 1 to 200 characters, unique per intended change")
        raise violations
