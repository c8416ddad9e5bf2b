"""Checks of what callers send. A comment becomes a PreparedComment, ready to store, or raises
FieldViolations naming each bad field of the Comment; answers, extensions and list requests
are checked the same way. Text is NFC from here on."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass
from functools import lru_cache
from datetime import date

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policy.consultation.v1 import events_pb2 as events
from policykit import idempotency, wellformed
from policykit.errors import FieldViolations
from policykit.reference import ReferenceData, UnknownReference
from policykit.text import looks_corrupted, nfc

from services.consultation import signatures

MAX_TEXT = 10_000
MAX_ARTICLE_REF = 100
MAX_NAME = 200
MAX_ORGANISATION = 300
MAX_EMAIL = 254
MAX_EXPLANATION = 10_000
MAX_REASON = 2_000
MAX_COMMENTS_PER_MESSAGE = 1_000
MAX_ANSWERED_IDS = 1_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_REGULATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Every mark looks_corrupted looks for contains one of these characters; most comments have
# none, and this one search is far cheaper than the full check.
_CORRUPTION_MARK = re.compile(r"[?\ufffd\u0080-\u00bf\u2018-\u203a\u0192\u02c6\u02dc]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE_SEPARATORS = str.maketrans("", "", " .-()")
# Vietnamese numbers (0…, 84…, +84… and 9 or 10 digits), or any international +number.
_PHONE = re.compile(r"^(?:\+84|84|0)(\d{9,10})$|^\+(\d{8,15})$")
_ARTICLE = re.compile(r"(?:điều|dieu)\s*(\d+)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_STAKEHOLDER_TYPES = frozenset(n for n in common_pb2.StakeholderType.values() if n)
_OUTCOMES = frozenset(n for n in events.AnswerOutcome.values() if n)


@dataclass(slots=True)
class PreparedComment:
    """A valid comment, normalised, with what storing and grouping it needs."""

    regulation_id: str
    idempotency_key: str
    stakeholder_type: int
    province_code: str
    province_id: str
    article_ref: str
    article: str
    text: str
    text_key: int
    flagged: bool
    pseudonym: str
    contact: tuple[str, str, str, str]  # name, email, phone, organisation


def _text_problem(value: str, limit: int) -> str | None:
    """Says what is wrong with a short free text (NFC already), or None."""
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    if _CORRUPTION_MARK.search(value) and looks_corrupted(value):
        return ("text looks corrupted ('?' or U+FFFD in place of letters, or mojibake); "
                "resend it as UTF-8")
    return None


def _check_note(violations: FieldViolations, field: str, value: str, limit: int) -> str:
    """Checks a required free text such as a reason; returns it NFC-normalised."""
    value = nfc(value)
    problem = "must not be empty" if not value.strip() else _text_problem(value, limit)
    if problem:
        violations.add(field, problem)
    return value


def check_regulation_id(violations: FieldViolations, regulation_id: str) -> None:
    if not _REGULATION_ID.match(regulation_id):
        violations.add("regulation_id", "must be the regulation's id: 1 to 64 characters "
                                        "a-z, 0-9 and '-'")


@lru_cache(maxsize=4096)  # comments name the same few hundred articles again and again
def normalise_article(ref: str) -> tuple[str, str]:
    """Returns (the reference with its spacing tidied, the article it is counted under)."""
    ref = _SPACES.sub(" ", nfc(ref)).strip()
    match = _ARTICLE.search(ref)
    return ref, (f"Điều {int(match[1])}" if match else ref)


class CommentChecker:
    """Turns submitted comments into PreparedComments. The commenter's pseudonym is an
    HMAC-SHA256 of the normalised email (else phone number) under the service's secret key:
    stable per commenter, not reversible without the key; no contact, no pseudonym."""

    def __init__(self, pseudonym_key: bytes, reference: ReferenceData):
        self.pseudonym_key = pseudonym_key
        self.reference = reference
        self._provinces: dict[tuple[str, date], str | None] = {}

    def _province_id(self, code: str, today: date) -> str | None:
        cached = self._provinces.get((code, today), "")
        if cached == "":
            try:
                cached = self.reference.province_on(code, today).id
            except UnknownReference:
                cached = None
            if len(self._provinces) > 10_000:
                self._provinces.clear()
            self._provinces[(code, today)] = cached
        return cached

    def pseudonym(self, email: str, phone: str) -> str:
        identity = f"email:{email.lower()}" if email else f"phone:{phone}" if phone else ""
        if not identity:
            return ""
        return hmac.new(self.pseudonym_key, identity.encode("utf-8"),
                        hashlib.sha256).hexdigest()[:32]

    def _contact(self, violations: FieldViolations,
                 contact: api.ContactDetails) -> tuple[str, str, str, str]:
        name, organisation = nfc(contact.name).strip(), nfc(contact.organisation).strip()
        for field, value, limit in (("contact.name", name, MAX_NAME),
                                    ("contact.organisation", organisation, MAX_ORGANISATION)):
            problem = value and _text_problem(value, limit)
            if problem:
                violations.add(field, problem)
        email = nfc(contact.email).strip()
        if email and (len(email) > MAX_EMAIL or not _EMAIL.match(email)):
            violations.add("contact.email", "is not an email address like ten@example.vn")
        phone = contact.phone.translate(_PHONE_SEPARATORS)
        if phone:
            match = _PHONE.match(phone)
            if match is None:
                violations.add("contact.phone", "is not a phone number like 0912 345 678 or "
                                                "+84 912 345 678")
            else:
                phone = f"+84{match[1]}" if match[1] else f"+{match[2]}"
        return name, email, phone, organisation

    def prepare(self, comment: api.Comment, today: date) -> PreparedComment:
        """Checks a comment; raises FieldViolations naming the Comment's fields. A text that
        looks corrupted is not refused: the comment is flagged."""
        # A bulk stream's comments reach no boundary check (policykit.grpc_requests checks a
        # unary request whole): control characters are refused here, in any field.
        violations = FieldViolations()
        for field, problem in wellformed.problems(comment):
            violations.add(field, problem)
        key = comment.idempotency_key
        if not key or len(key) > idempotency.MAX_KEY_LENGTH:
            violations.add("idempotency_key", f"must be 1 to {idempotency.MAX_KEY_LENGTH} "
                                              "characters, unique per comment")
        check_regulation_id(violations, comment.regulation_id)
        if comment.stakeholder_type not in _STAKEHOLDER_TYPES:
            violations.add("stakeholder_type", "must be one of " + ", ".join(
                common_pb2.StakeholderType.Name(n) for n in sorted(_STAKEHOLDER_TYPES)))
        province_code = comment.province_code
        province_id = self._province_id(province_code, today)
        if province_id is None:
            violations.add("province_code", f"unknown province {province_code!r}; use "
                                            "a 2008 code ('01') or a 2025 id ('tp-ha-noi')")
        text = comment.text
        if not unicodedata.is_normalized("NFC", text):
            text = nfc(text)
        flagged = False
        if not text.strip():
            violations.add("text", "must not be empty")
        elif len(text) > MAX_TEXT:
            violations.add("text", f"must be at most {MAX_TEXT} characters, got {len(text)}")
        else:
            flagged = bool(_CORRUPTION_MARK.search(text)) and looks_corrupted(text)
        article_ref, article = normalise_article(comment.article_ref)
        problem = article_ref and _text_problem(article_ref, MAX_ARTICLE_REF)
        if problem:
            violations.add("article_ref", problem)
        contact = ("", "", "", "")
        if comment.HasField("contact"):
            contact = self._contact(violations, comment.contact)
        violations.raise_if_any()
        return PreparedComment(
            regulation_id=comment.regulation_id, idempotency_key=key,
            stakeholder_type=comment.stakeholder_type, province_code=province_code,
            province_id=province_id, article_ref=article_ref, article=article, text=text,
            text_key=0 if flagged else signatures.exact_key(text),
            flagged=flagged, pseudonym=self.pseudonym(contact[1], contact[2]), contact=contact)


def prefixed(error: FieldViolations, prefix: str) -> FieldViolations:
    """Returns the violations with each field under `prefix`, e.g. "comment.text"."""
    moved = FieldViolations()
    for field, problem in error.violations:
        moved.add(f"{prefix}.{field}", problem)
    return moved


def check_extension(request: api.ExtendConsultationRequest) -> str:
    """Checks an extension's own fields; returns the reason, NFC."""
    violations = FieldViolations()
    check_regulation_id(violations, request.regulation_id)
    if not request.HasField("closes_at"):
        violations.add("closes_at", "must be the new end of the window")
    reason = _check_note(violations, "reason", request.reason, MAX_REASON)
    violations.raise_if_any()
    return reason


@dataclass(frozen=True)
class AnswerRequest:
    regulation_id: str
    comment_ids: list[uuid.UUID]
    campaign_id: uuid.UUID | None
    outcome: int
    explanation: str


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def check_answer(request: api.AnswerCommentsRequest) -> AnswerRequest:
    violations = FieldViolations()
    check_regulation_id(violations, request.regulation_id)
    comment_ids = [_uuid(value) for value in request.comment_ids]
    campaign_id = _uuid(request.campaign_id) if request.campaign_id else None
    if bool(request.comment_ids) == bool(request.campaign_id):
        violations.add("comment_ids", "give either comment_ids or campaign_id")
    elif len(comment_ids) > MAX_ANSWERED_IDS:
        violations.add("comment_ids", f"must have at most {MAX_ANSWERED_IDS} entries")
    for index, parsed in enumerate(comment_ids):
        if parsed is None:
            violations.add(f"comment_ids[{index}]", "is not a comment id")
    if request.campaign_id and campaign_id is None:
        violations.add("campaign_id", "is not a campaign id")
    if request.outcome not in _OUTCOMES:
        violations.add("outcome", "must be one of " + ", ".join(
            events.AnswerOutcome.Name(n) for n in sorted(_OUTCOMES)))
    explanation = _check_note(violations, "explanation", request.explanation, MAX_EXPLANATION)
    violations.raise_if_any()
    return AnswerRequest(request.regulation_id, list(dict.fromkeys(comment_ids)), campaign_id,
                         request.outcome, explanation)


def check_regulation(request) -> None:
    """Checks a request that names a consultation by its regulation_id."""
    violations = FieldViolations()
    check_regulation_id(violations, request.regulation_id)
    violations.raise_if_any()


def page_size(violations: FieldViolations, page: common_pb2.PageRequest) -> int:
    if page.page_size < 0:
        violations.add("page.page_size", f"must not be negative, got {page.page_size}")
    return min(page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def article_filter(violations: FieldViolations, article: str) -> str | None:
    """The article a ListComments filter names, read the way comments are counted under
    articles ("điều 5", decomposed or not, is "Điều 5"); None for every article."""
    if not article:
        return None
    if len(article) > MAX_ARTICLE_REF:
        violations.add("article", f"must be at most {MAX_ARTICLE_REF} characters, an article "
                                  "like 'Điều 5'")
        return None
    return normalise_article(article)[1]


def encode_token(*values) -> str:
    return base64.urlsafe_b64encode("\x1f".join(map(str, values)).encode()).decode("ascii")


def decode_token(violations: FieldViolations, token: str, kinds: tuple[type, ...]) -> tuple | None:
    """Reads a next_page_token made by encode_token from values of the given kinds."""
    if not token:
        return None
    try:
        parts = base64.b64decode(token, altchars=b"-_", validate=True).decode().split("\x1f")
        if len(parts) != len(kinds):
            raise ValueError("wrong number of values")
        values = tuple(kind(part) for kind, part in zip(kinds, parts))
        if any(isinstance(value, int) and not -2**63 <= value < 2**63 for value in values):
            raise ValueError("a number past a bigint")
        return values
    except (binascii.Error, UnicodeDecodeError, ValueError):
        violations.add("page.page_token", "is not a next_page_token of this call; pass it back "
                                          "unchanged")
        return None
