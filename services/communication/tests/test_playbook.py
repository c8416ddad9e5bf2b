"""Playbook validation: the default is valid; each kind of mistake is named by rule and field."""

import pytest
import yaml

from policykit.reference import default
from services.communication import playbook
from services.communication.playbook import PlaybookError


def test_default_playbook_is_valid():
    loaded = playbook.load(playbook.DEFAULT_PATH, default())
    events = {rule.event for rule in loaded.rules}
    assert {"policy.drafting.v1.DraftRegistered", "policy.consultation.v1.ConsultationOpened",
            "policy.consultation.v1.ConsultationClosed", "policy.publication.v1.RegulationPublished",
            "policy.publication.v1.RegulationEffective",
            "policy.evaluation.v1.MisinformationAlertRaised"} <= events


def broken(tmp_path, mutate) -> str:
    document = yaml.safe_load(playbook.DEFAULT_PATH.read_text("utf-8"))
    mutate(document)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    with pytest.raises(PlaybookError) as caught:
        playbook.load(path, default())
    return str(caught.value)


def first_task(document) -> dict:
    return document["rules"][0]["tasks"][0]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: first_task(d).update(channel="FAX"),
     "rule 'high-impact-draft-materials' field 'tasks[0].channel': 'FAX' is not one of"),
    (lambda d: d["rules"][3].update(event="policy.drafting.v1.DraftLost"),
     "rule 'consultation-opened' field 'event': 'policy.drafting.v1.DraftLost' is not a "
     "lifecycle event type"),
    (lambda d: first_task(d).pop("owner"),
     "rule 'high-impact-draft-materials' field 'tasks[0]': 'owner' is a required property"),
    (lambda d: first_task(d).update(owner="commune-officers"),
     "rule 'high-impact-draft-materials' field 'tasks[0].regions': owner commune-officers"),
    (lambda d: first_task(d).update(owner="press-agency", press_agency="bnv"),
     "field 'tasks[0].press_agency': 'bnv' is not a press agency"),
    (lambda d: first_task(d).update(title="Tóm tắt: {tittle}"),
     "field 'tasks[0].title': unknown placeholder(s) ['tittle']"),
    (lambda d: first_task(d).update(due={"after": "event", "offset": "7 days"}),
     "rule 'high-impact-draft-materials' field 'tasks[0].due.offset'"),
    (lambda d: first_task(d).update(due={"after": "signed_at", "offset": "P1D"}),
     "field 'tasks[0].due': 'signed_at' is not 'event', a regulation date"),
    (lambda d: d["rules"][1].update(id=d["rules"][0]["id"]),
     "rule 'high-impact-draft-materials' field 'id': is used by another rule"),
    (lambda d: d["rules"][0]["when"].update(impact_level=["HUGE"]),
     "rule 'high-impact-draft-materials' field 'when.impact_level[0]'"),
    (lambda d: d.pop("version"), "field '(top level)': 'version' is a required property"),
])
def test_invalid_playbook_names_rule_and_field(tmp_path, mutate, expected):
    assert expected in broken(tmp_path, mutate)


def test_unreadable_yaml_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules: [unclosed", "utf-8")
    with pytest.raises(PlaybookError, match="bad.yaml: cannot be read as YAML"):
        playbook.load(path, default())
