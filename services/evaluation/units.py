"""Who an item counts for: the agency or province behind an organisation id, and the unit or
agency in force on a reporting date that an id recorded earlier stands for.

Items keep the ids they were recorded with (a 2008 province code, a ministry merged in 2025);
reports map them through the effective-dated reference data on the report date, so one
history serves reports made before and after the 2025 reorganisation."""

from __future__ import annotations

import functools
from datetime import date

from policy.evaluation.v1 import evaluation_service_pb2 as api
from policykit.reference import ReferenceData, UnknownReference

AGENCY = api.SCORECARD_KIND_AGENCY
PROVINCE = api.SCORECARD_KIND_PROVINCE
KIND_NAMES = {AGENCY: "agency", PROVINCE: "province"}
NATIONAL = "national"
# A date after every unit's start: the unit an id belongs to today and from now on.
_LATEST = date(9999, 12, 31)


def unit_of(org_id: str) -> str:
    """`bnnmt.communication` → `bnnmt`; `vtv` → `vtv`."""
    return org_id.partition(".")[0]


class Units:
    """Reference-data lookups the scoring needs, cached: they run for every scored item."""

    def __init__(self, reference: ReferenceData):
        self.reference = reference

    @functools.cache
    def kind_of(self, unit_id: str) -> int | None:
        """AGENCY for a ministry, ministerial-level or press agency, PROVINCE for a 2008 code
        or 2025 id, None for an id the reference data does not know."""
        try:
            self.reference.agency(unit_id)
            return AGENCY
        except UnknownReference:
            pass
        try:
            self.reference.province(unit_id)
            return PROVINCE
        except UnknownReference:
            return None

    @functools.cache
    def subject_on(self, kind: int, unit_id: str, on: date) -> str:
        """The unit or agency in force on the date that the recorded id stands for; an
        agency that did not exist yet on the date stays itself."""
        try:
            if kind == AGENCY:
                return self.reference.agency_on(unit_id, on).id
            return self.reference.province_on(unit_id, on).id
        except UnknownReference:
            return unit_id

    def check_subject(self, kind: int, subject_id: str, on: date) -> str:
        """Returns the id in force on the date for a subject asked for by id; raises
        UnknownReference when the id is not an agency (or province) at all."""
        if self.kind_of(subject_id) != kind:
            what = "an agency" if kind == AGENCY else "a province"
            raise UnknownReference(f"{subject_id!r} is not {what} of the reference data")
        if kind == AGENCY:
            return self.reference.agency_on(subject_id, on).id
        return self.reference.province_on(subject_id, on).id

    def province_ids(self, province_id: str) -> set[str]:
        """The ids a province may be recorded under: its own and its 2008 predecessors'."""
        return {province_id, *self.reference.province(province_id).predecessors}

    @functools.cache
    def current_region(self, region_id: str) -> str:
        """The unit in force from now on for a region id (so 2008 codes and 2025 ids of the
        same place match), or NATIONAL; raises UnknownReference for an unknown id."""
        if region_id == NATIONAL:
            return NATIONAL
        return self.reference.province_on(region_id, _LATEST).id

    @functools.cache
    def name(self, kind: int, subject_id: str, on: date) -> str:
        try:
            if kind == AGENCY:
                return self.reference.agency(subject_id).name
            return self.reference.province_on(subject_id, on).name
        except UnknownReference:
            return subject_id

    def region_name(self, region_id: str) -> str:
        if region_id == NATIONAL:
            return "Toàn quốc"
        return self.name(PROVINCE, region_id, _LATEST)

    def subjects_in_force(self, kind: int, on: date) -> list[tuple[str, str]]:
        """(id, name) of the agencies or provinces in force on the date, in file order."""
        if kind == AGENCY:
            return [(a.id, a.name) for a in self.reference.agencies_in_force(on)]
        return [(p.id, p.name) for p in self.reference.provinces_in_force(on)]
