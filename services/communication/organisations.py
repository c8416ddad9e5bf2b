"""Who owns a task, and to whom an overdue task is escalated.

Organisation ids are `<unit>.<office>` for an office of a ministry or province (e.g.
`bnnmt.communication`, `tuyen-quang.commune-officers`), or a bare unit id for the unit itself
or a press agency (`vtv`). Units come from the effective-dated reference data, so a merged
ministry's new tasks go to its successor."""

from __future__ import annotations

import re
from datetime import date

from policykit.reference import ReferenceData, UnknownReference

# Office of each playbook owner role within its unit.
OFFICES = {
    "lead-agency-communication": "communication",
    "lead-agency-spokesperson": "spokesperson",
    "province-information-department": "information-department",
    "commune-officers": "commune-officers",
    "grassroots-collaborators": "grassroots-collaborators",
}
OFFICE_NAMES = {
    "communication": "bộ phận truyền thông",
    "spokesperson": "người phát ngôn",
    "information-department": "cơ quan thông tin – truyền thông tỉnh",
    "commune-officers": "cán bộ cấp xã",
    "grassroots-collaborators": "cộng tác viên cơ sở",
}
# Commune officers and collaborators answer to the province's information department; an
# office answers to its unit; a unit, to the Government Office, which follows up on ministries'
# and provinces' duties.
ESCALATION = {"commune-officers": "information-department",
              "grassroots-collaborators": "information-department"}
GOVERNMENT_OFFICE = "vpcp"
_ORG_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}(\.[a-z0-9][a-z0-9-]{0,63})?$")


def is_org_id(text: str) -> bool:
    """Tells whether the text has the form of an organisation id."""
    return _ORG_ID.match(text) is not None


def owner_id(role: str, unit: str) -> str:
    """Returns the organisation id of the role's office in `unit`; press agencies own their
    tasks themselves."""
    return unit if role == "press-agency" else f"{unit}.{OFFICES[role]}"


def superior_of(org_id: str, commissioning_agency: str, reference: ReferenceData) -> str:
    """Returns the organisation an overdue task of `org_id` is escalated to. A press agency's
    task goes back to the communication office of the agency that commissioned it."""
    unit, _, office = org_id.partition(".")
    if office in ESCALATION:
        return f"{unit}.{ESCALATION[office]}"
    if office:
        return unit
    if _is_press_agency(unit, reference):
        return owner_id("lead-agency-communication", commissioning_agency)
    return GOVERNMENT_OFFICE


def _is_press_agency(unit: str, reference: ReferenceData) -> bool:
    try:
        return reference.agency(unit).kind == "press-agency"
    except UnknownReference:
        return False


def display_name(org_id: str, reference: ReferenceData, on: date) -> str:
    """Returns a Vietnamese name for the organisation, e.g. 'Tuyên Quang – cán bộ cấp xã'."""
    unit, _, office = org_id.partition(".")
    try:
        name = reference.agency(unit).name
    except UnknownReference:
        try:
            name = reference.province_on(unit, on).name
        except UnknownReference:
            name = unit
    return f"{name} – {OFFICE_NAMES.get(office, office)}" if office else name
