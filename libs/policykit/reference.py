"""Effective-dated reference data: Vietnam's provincial-level units and its ministries,
ministerial-level agencies and national press agencies, across the 2025 reorganisation.

Ids stay valid after a merger: `agency_on` and `province_on` resolve an id recorded on a
regulation to the unit or agency in force on a given date. `default()` loads the vendored
data once per process.
"""

from __future__ import annotations

import csv
import functools
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

DATA_DIR = Path(__file__).with_name("reference_data")
AGENCY_KINDS = frozenset({"ministry", "ministerial-agency", "press-agency"})
PROVINCE_KINDS = frozenset({"province", "city"})
BORDER_COUNTRIES = frozenset({"CN", "LA", "KH"})


class UnknownReference(KeyError):
    """An id that the reference data does not know, or not on the date asked for."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of the message, quotes and escapes included.
        return str(self.args[0])


@dataclass(frozen=True)
class Agency:
    """A ministry, ministerial-level agency or press agency; open-ended dates are None."""

    id: str
    name: str
    kind: str
    valid_from: date | None
    valid_to: date | None
    succeeded_by: str | None

    def in_force(self, on: date) -> bool:
        """Tells whether the agency exists on the date (both ends inclusive)."""
        return ((self.valid_from is None or self.valid_from <= on)
                and (self.valid_to is None or on <= self.valid_to))


@dataclass(frozen=True)
class Province:
    """A provincial-level unit: a 2008 unit (two-digit code) or a 2025 unit (slug id)."""

    id: str
    name: str
    kind: str
    valid_from: date
    valid_to: date | None
    borders: frozenset[str]
    coastal: bool
    island: bool
    mountainous: bool
    merged_into: str | None = None
    predecessors: tuple[str, ...] = ()

    @property
    def border(self) -> bool:
        """Tells whether the unit has a land border with another country."""
        return bool(self.borders)

    def in_force(self, on: date) -> bool:
        """Tells whether the unit exists on the date (both ends inclusive)."""
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def attributes(self) -> frozenset[str]:
        """Returns the unit's flags among border, coastal, island and mountainous."""
        return self._attributes

    @functools.cached_property
    def _attributes(self) -> frozenset[str]:
        # Worked out once: the task engine's planner asks for them several times a task.
        flags = {"border": self.border, "coastal": self.coastal, "island": self.island,
                 "mountainous": self.mountainous}
        return frozenset(name for name, on in flags.items() if on)


class _Row:
    """One CSV data row, NFC-normalised, that knows where it comes from for error messages."""

    def __init__(self, path: Path, line: int, values: dict[str, str]):
        self.path, self.line = path, line
        self.values = {k: unicodedata.normalize("NFC", v.strip()) for k, v in values.items()}

    def error(self, field: str, problem: str) -> ValueError:
        return ValueError(f"{self.path}, line {self.line}, field {field!r}: {problem}")

    def text(self, field: str) -> str:
        if not self.values[field]:
            raise self.error(field, "is empty")
        return self.values[field]

    def optional(self, field: str) -> str | None:
        return self.values[field] or None

    def choice(self, field: str, allowed: frozenset[str]) -> str:
        value = self.text(field)
        if value not in allowed:
            raise self.error(field, f"{value!r} is not one of {sorted(allowed)}")
        return value

    def flag(self, field: str) -> bool:
        return self.choice(field, frozenset({"yes", "no"})) == "yes"

    def day(self, field: str, required: bool = False) -> date | None:
        value = self.text(field) if required else self.optional(field)
        try:
            return None if value is None else date.fromisoformat(value)
        except ValueError:
            raise self.error(field, f"{value!r} is not a date YYYY-MM-DD") from None

    def items(self, field: str, required: bool = False) -> tuple[str, ...]:
        value = self.text(field) if required else self.optional(field)
        return () if value is None else tuple(item.strip() for item in value.split(";"))


def _read(path: Path, columns: tuple[str, ...]) -> list[_Row]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}, line 1, field {missing[0]!r}: column is missing")
        rows, seen = [], set()
        for values in reader:
            # DictReader files surplus fields under None and fills missing ones with None.
            row = _Row(path, reader.line_num, {c: values[c] or "" for c in columns})
            if None in values:
                raise row.error(columns[-1], "the row has more fields than the header")
            key = row.text(columns[0])
            if key in seen:
                raise row.error(columns[0], f"{key!r} appears twice")
            seen.add(key)
            rows.append(row)
    return rows


def _agencies(directory: Path) -> dict[str, Agency]:
    rows = _read(directory / "agencies.csv",
                 ("id", "name", "kind", "valid_from", "valid_to", "succeeded_by"))
    agencies = {row.text("id"): Agency(
        id=row.text("id"), name=row.text("name"), kind=row.choice("kind", AGENCY_KINDS),
        valid_from=row.day("valid_from"), valid_to=row.day("valid_to"),
        succeeded_by=row.optional("succeeded_by")) for row in rows}
    for row, agency in zip(rows, agencies.values()):
        if agency.succeeded_by is None:
            continue
        successor = agencies.get(agency.succeeded_by)
        if successor is None:
            raise row.error("succeeded_by", f"unknown agency {agency.succeeded_by!r}")
        # A successor in force the day after its predecessor ends leaves no gap for
        # agency_on to fall into, and rules out cycles of succession.
        if agency.valid_to is None or not successor.in_force(agency.valid_to + timedelta(1)):
            raise row.error("succeeded_by", f"{successor.id!r} is not in force the day "
                                            f"after {agency.id!r} ends")
    return agencies


def _provinces(directory: Path) -> dict[str, Province]:
    old_rows = _read(directory / "provinces-2008.csv", (
        "code", "name", "kind", "borders", "coastal", "valid_from", "valid_to", "merged_into"))
    new_rows = _read(directory / "provinces-2025.csv",
                     ("id", "name", "kind", "predecessor_codes", "valid_from", "valid_to"))
    attribute_rows = _read(directory / "province-attributes-2008.csv",
                           ("code", "island", "mountainous"))
    codes = {row.text("code") for row in old_rows}
    attributes = {}
    for row in attribute_rows:
        if row.text("code") not in codes:
            raise row.error("code", f"unknown 2008 code {row.text('code')!r}")
        attributes[row.text("code")] = (row.flag("island"), row.flag("mountainous"))
    new_ids = {row.text("id") for row in new_rows}

    provinces: dict[str, Province] = {}
    for row in old_rows:
        code = row.text("code")
        if code not in attributes:
            raise row.error("code", f"{code!r} has no row in province-attributes-2008.csv")
        if row.optional("merged_into") not in new_ids | {None}:
            raise row.error("merged_into", f"unknown 2025 unit {row.values['merged_into']!r}")
        borders = row.items("borders")
        if not set(borders) <= BORDER_COUNTRIES:
            raise row.error("borders", f"{row.values['borders']!r} names a country other "
                                       f"than {sorted(BORDER_COUNTRIES)}")
        provinces[code] = Province(
            id=code, name=row.text("name"), kind=row.choice("kind", PROVINCE_KINDS),
            valid_from=row.day("valid_from", required=True),
            valid_to=row.day("valid_to"), borders=frozenset(borders),
            coastal=row.flag("coastal"), island=attributes[code][0],
            mountainous=attributes[code][1], merged_into=row.optional("merged_into"))

    for row in new_rows:
        unit_id, predecessors = row.text("id"), row.items("predecessor_codes", required=True)
        if unit_id in codes:
            raise row.error("id", f"{unit_id!r} is also a 2008 code")
        for code in predecessors:
            if code not in codes:
                raise row.error("predecessor_codes", f"unknown 2008 code {code!r}")
            if provinces[code].merged_into != unit_id:
                raise row.error("predecessor_codes", f"{code!r} is merged into "
                                                     f"{provinces[code].merged_into!r}")
        parts = [provinces[code] for code in predecessors]
        provinces[unit_id] = Province(
            id=unit_id, name=row.text("name"), kind=row.choice("kind", PROVINCE_KINDS),
            valid_from=row.day("valid_from", required=True),
            valid_to=row.day("valid_to"),
            borders=frozenset().union(*(p.borders for p in parts)),
            coastal=any(p.coastal for p in parts), island=any(p.island for p in parts),
            mountainous=any(p.mountainous for p in parts), predecessors=predecessors)

    for row in old_rows:
        merged_into = row.optional("merged_into")
        if merged_into is not None and row.text("code") not in provinces[merged_into].predecessors:
            raise row.error("merged_into", f"{merged_into!r} does not list it among "
                                           f"its predecessor_codes")
    return provinces


class ReferenceData:
    """Agencies and provincial-level units, looked up by id and resolved by date."""

    def __init__(self, agencies: dict[str, Agency], provinces: dict[str, Province]):
        self._agencies = agencies
        self._provinces = provinces

    @classmethod
    def load(cls, directory: Path | None = None) -> ReferenceData:
        """Reads and validates the CSV files; bad data raises ValueError naming file, line
        and field. The default directory is the package's vendored `reference_data`."""
        directory = DATA_DIR if directory is None else Path(directory)
        return cls(_agencies(directory), _provinces(directory))

    def agency(self, agency_id: str) -> Agency:
        """Returns the agency whatever its dates."""
        try:
            return self._agencies[agency_id]
        except KeyError:
            raise UnknownReference(f"unknown agency {agency_id!r}") from None

    def agency_on(self, agency_id: str, on: date) -> Agency:
        """Returns the agency in force on the date: the agency itself, or the successor it
        merged into. An agency not yet created on the date raises UnknownReference."""
        agency = self.agency(agency_id)
        if agency.valid_from is not None and on < agency.valid_from:
            raise UnknownReference(
                f"agency {agency_id!r} did not exist on {on.isoformat()}: "
                f"it starts on {agency.valid_from.isoformat()}")
        while not agency.in_force(on):
            if agency.succeeded_by is None:
                raise UnknownReference(f"agency {agency_id!r} ended on "
                                       f"{agency.valid_to} with no successor by {on}")
            agency = self._agencies[agency.succeeded_by]
        return agency

    def agencies_in_force(self, on: date, kind: str | None = None) -> list[Agency]:
        """Returns the agencies in force on the date, of one kind if given, in file order."""
        if kind is not None and kind not in AGENCY_KINDS:
            raise ValueError(f"unknown agency kind {kind!r}; use one of {sorted(AGENCY_KINDS)}")
        return [a for a in self._agencies.values()
                if a.in_force(on) and (kind is None or a.kind == kind)]

    def province(self, code_or_id: str) -> Province:
        """Returns the unit with that 2008 code or 2025 id, whatever its dates."""
        try:
            return self._provinces[code_or_id]
        except KeyError:
            raise UnknownReference(f"unknown province {code_or_id!r}") from None

    def province_on(self, code_or_id: str, on: date) -> Province:
        """Returns the unit that the code or id stands for on the date.

        A 2008 code resolves to the 2025 unit it was merged into once that unit is in force.
        Nothing maps backwards: a 2025 id returns its 2025 unit even for a date before
        2025-07-01, since a draft may be registered with the new ids ahead of the
        reorganisation, and a 2008 code returns its own unit for any date before the merger.
        """
        province = self.province(code_or_id)
        if province.merged_into is not None:
            successor = self._provinces[province.merged_into]
            if on >= successor.valid_from:
                return successor
        return province

    def provinces_in_force(self, on: date) -> list[Province]:
        """Returns the units in force on the date, in file order."""
        return [p for p in self._provinces.values() if p.in_force(on)]


@functools.cache
def default() -> ReferenceData:
    """Returns the vendored reference data, loaded and validated once per process."""
    return ReferenceData.load()
