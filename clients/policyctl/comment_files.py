"""Files of comments for `policyctl consultation import`: CSV (a header row) or JSON Lines
(one object per line), UTF-8. Each row becomes a Comment or, when it cannot, a rejection
naming the field — the service is never sent what is certainly wrong.

Columns / keys: text (required), stakeholder_type (citizen, business, organisation, expert,
agency), province_code, article_ref, name, email, phone, organisation, idempotency_key.
JSON Lines may nest the contact details as {"contact": {"name": …}}. Columns whose name
starts with `rejected_` (the ones the rejected-rows file adds) are ignored, so a corrected
rejected-rows file can be imported as it is.

Without an idempotency_key column a row's key is derived from the regulation, the row's place
in the file and its content: importing the same file again stores nothing twice."""

from __future__ import annotations

import csv
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from policy.common.v1 import common_pb2
from policy.consultation.v1 import consultation_service_pb2 as api
from policykit.text import nfc

CONTACT_FIELDS = ("name", "email", "phone", "organisation")
FIELDS = ("text", "stakeholder_type", "province_code", "article_ref", "idempotency_key",
          *CONTACT_FIELDS)
REJECTED_PREFIX = "rejected_"
STAKEHOLDER_TYPES = {value.name.removeprefix("STAKEHOLDER_TYPE_").lower(): value.number
                     for value in common_pb2.StakeholderType.DESCRIPTOR.values if value.number}


class FileProblem(ValueError):
    """The file as a whole cannot be imported (format, encoding, columns)."""


@dataclass
class Row:
    number: int                      # 1 for the first data row
    raw: dict                        # as read, for the rejected-rows file
    comment: api.Comment | None = None
    field: str = ""                  # set with reason when the row is rejected here
    reason: str = ""


def file_format(path: Path, declared: str | None) -> str:
    chosen = declared or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower())
    if chosen is None:
        raise FileProblem(f"{path.name}: cannot tell the format from the extension; "
                          "pass --format csv or --format jsonl")
    return chosen


@contextmanager
def _utf8(path: Path) -> Iterator[TextIO]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield file
    except UnicodeDecodeError as error:
        raise FileProblem(f"{path.name} is not UTF-8 text; save it as UTF-8 and import it "
                          "again — rows already imported are not stored twice") from error


def count_rows(path: Path, fmt: str) -> int:
    with _utf8(path) as file:
        if fmt == "csv":
            return max(0, sum(1 for _ in csv.reader(file)) - 1)
        return sum(1 for line in file if line.strip())


def read_rows(path: Path, fmt: str, regulation_id: str) -> Iterator[Row]:
    """Yields every row as a Comment or a rejection, in file order."""
    with _utf8(path) as file:
        raw_rows = _csv_rows(file) if fmt == "csv" else _jsonl_rows(file)
        for number, raw in enumerate(raw_rows, start=1):
            yield _row(number, raw, regulation_id)


def _csv_rows(file) -> Iterator[dict]:
    reader = csv.DictReader(file)
    _check_columns(reader.fieldnames or [])
    for raw in reader:
        # A row longer than the header puts its extra cells under the key None.
        if None in raw:
            yield {"__problem__": f"{len(raw[None])} more cell(s) than the header has",
                   **{k: v for k, v in raw.items() if k is not None}}
        else:
            yield raw


def _check_columns(columns: list[str]) -> None:
    known = [c for c in columns if not c.startswith(REJECTED_PREFIX)]
    unknown = sorted(set(known) - set(FIELDS))
    if unknown:
        raise FileProblem(f"unknown column(s) {', '.join(unknown)}; the columns are "
                          f"{', '.join(FIELDS)}")
    if "text" not in known:
        raise FileProblem("no text column")


def _jsonl_rows(file) -> Iterator[dict]:
    for line in file:
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            yield {"__problem__": f"not JSON: {error.msg} at column {error.colno}",
                   "line": line.rstrip("\n")}
            continue
        if not isinstance(raw, dict):
            yield {"__problem__": "not a JSON object", "line": line.rstrip("\n")}
            continue
        contact = raw.pop("contact", None)
        if isinstance(contact, dict):
            raw.update({f: contact[f] for f in CONTACT_FIELDS if f in contact})
        yield raw


def _row(number: int, raw: dict, regulation_id: str) -> Row:
    row = Row(number, {k: v for k, v in raw.items() if k != "__problem__"})
    if "__problem__" in raw:
        row.field, row.reason = "row", raw["__problem__"]
        return row
    values = {}
    for key, value in raw.items():
        if key.startswith(REJECTED_PREFIX):
            continue
        if key not in FIELDS:
            row.field, row.reason = key, "unknown field"
            return row
        if value is not None and not isinstance(value, str):
            row.field, row.reason = key, "must be text"
            return row
        values[key] = nfc(value or "").strip()
    stakeholder = values.get("stakeholder_type", "").lower().removeprefix("stakeholder_type_")
    if stakeholder and stakeholder not in STAKEHOLDER_TYPES:
        row.field = "stakeholder_type"
        row.reason = f"must be one of {', '.join(STAKEHOLDER_TYPES)}"
        return row
    comment = api.Comment(
        regulation_id=regulation_id, text=values.get("text", ""),
        stakeholder_type=STAKEHOLDER_TYPES.get(stakeholder, 0),
        province_code=values.get("province_code", ""), article_ref=values.get("article_ref", ""),
        contact=api.ContactDetails(**{f: values.get(f, "") for f in CONTACT_FIELDS}))
    comment.idempotency_key = values.get("idempotency_key") or _derived_key(
        regulation_id, number, comment)
    row.comment = comment
    return row


def _derived_key(regulation_id: str, number: int, comment: api.Comment) -> str:
    digest = hashlib.sha256(f"{regulation_id}\0{number}\0".encode()
                            + comment.SerializeToString(deterministic=True)).hexdigest()
    return f"import-{digest[:32]}"


class RejectedRows:
    """The rejected-rows file: the input's rows as they were, plus rejected_row,
    rejected_field and rejected_reason; same format as the input. Created on the first row."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.format = path, fmt
        self.count = 0
        self._file = None
        self._writer = None

    def add(self, row: Row, field: str, reason: str) -> None:
        record = {**row.raw, f"{REJECTED_PREFIX}row": row.number,
                  f"{REJECTED_PREFIX}field": field, f"{REJECTED_PREFIX}reason": reason}
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
        if self.format == "jsonl":
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            if self._writer is None:
                columns = [*FIELDS, f"{REJECTED_PREFIX}row", f"{REJECTED_PREFIX}field",
                           f"{REJECTED_PREFIX}reason"]
                self._writer = csv.DictWriter(self._file, columns, extrasaction="ignore")
                self._writer.writeheader()
            self._writer.writerow(record)
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
