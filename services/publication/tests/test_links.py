"""Amendment and repeal link two promulgated regulations; both timelines show the link."""

import grpc
import pytest

from policy.publication.v1 import publication_service_pb2 as api
from policykit.errors import field_violations
from services.publication.tests.helpers import (adopted, events_about, key, published,
                                                regulation_id, scheduled_timers)
from policyctl.timeline import fetch_timeline


def amend(stub, regulation: str, by: str, articles=("Điều 5", "Khoản 2 Điều 12")):
    return stub.AmendRegulation(api.AmendRegulationRequest(
        idempotency_key=key(), regulation_id=regulation, amended_by_regulation_id=by,
        amended_articles=list(articles)), timeout=10)


def repeal(stub, regulation: str, by: str):
    return stub.RepealRegulation(api.RepealRegulationRequest(
        idempotency_key=key(), regulation_id=regulation, repealed_by_regulation_id=by),
        timeout=10)


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def test_an_amendment_links_both_timelines(stub, producer, platform_topics):
    original, amending = published(stub, producer), published(stub, producer)
    amend(stub, original.regulation_id, amending.regulation_id)

    [event] = events_about(platform_topics, original.regulation_id, until=2)[1:]
    assert event.type == "policy.publication.v1.RegulationAmended"
    assert event.payload.amended_by_regulation_id == amending.regulation_id
    assert list(event.payload.amended_articles) == ["Điều 5", "Khoản 2 Điều 12"]

    amended_side = fetch_timeline(stub, original.regulation_id)
    amending_side = fetch_timeline(stub, amending.regulation_id)
    assert amended_side.entries[-1].description == (
        f"Được sửa đổi, bổ sung bởi {amending.document_number} (Điều 5, Khoản 2 Điều 12)")
    assert amending_side.entries[-1].description == (
        f"Sửa đổi, bổ sung {original.document_number} (Điều 5, Khoản 2 Điều 12)")
    assert amended_side.entries[-1].event_id == amending_side.entries[-1].event_id == event.id
    [link] = amended_side.regulation.links
    assert (link.kind, link.other_regulation_id, link.other_document_number, link.event_id) == (
        api.LINK_KIND_AMENDED_BY, amending.regulation_id, amending.document_number, event.id)
    [link] = amending_side.regulation.links
    assert (link.kind, link.other_regulation_id) == (api.LINK_KIND_AMENDS,
                                                     original.regulation_id)
    assert amended_side.regulation.status == api.REGULATION_STATUS_PUBLISHED

    again = refused(lambda: amend(stub, original.regulation_id, amending.regulation_id))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.details() == (f"regulation {original.regulation_id} is already amended by "
                               f"{amending.regulation_id}")


def test_a_repeal_ends_the_regulation_and_its_reminders(stub, producer, database_url):
    repealed, repealing = published(stub, producer), published(stub, producer)
    repeal(stub, repealed.regulation_id, repealing.regulation_id)

    timeline = fetch_timeline(stub, repealed.regulation_id)
    assert timeline.regulation.status == api.REGULATION_STATUS_REPEALED
    assert timeline.entries[-1].description == f"Bị bãi bỏ bởi {repealing.document_number}"
    assert fetch_timeline(stub, repealing.regulation_id).entries[-1].description == (
        f"Bãi bỏ {repealed.document_number}")
    [link] = timeline.regulation.links
    assert (link.kind, list(link.articles)) == (api.LINK_KIND_REPEALED_BY, [])
    assert len(scheduled_timers(database_url, repealed.regulation_id)) == 3
    assert scheduled_timers(database_url, repealed.regulation_id, pending=True) == []

    third = published(stub, producer)
    for call in (lambda: amend(stub, repealed.regulation_id, third.regulation_id),
                 lambda: repeal(stub, third.regulation_id, repealed.regulation_id)):
        error = refused(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details().startswith(f"regulation {repealed.regulation_id} is REPEALED; "
                                          "only a promulgated regulation that is not repealed")


def test_links_need_two_known_promulgated_regulations(stub, producer):
    promulgated = published(stub, producer)
    unknown = regulation_id()
    error = refused(lambda: amend(stub, promulgated.regulation_id, unknown))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details().startswith(f"amended_by_regulation_id: no regulation '{unknown}'")

    draft = adopted(stub, producer)
    error = refused(lambda: repeal(stub, draft, promulgated.regulation_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (f"regulation {draft} is ADOPTED; only a promulgated regulation "
                               "that is not repealed can be repealed")

    error = refused(lambda: amend(stub, promulgated.regulation_id, promulgated.regulation_id,
                                  articles=[" "]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(field_violations(error)) == {
        "amended_by_regulation_id": "must be another regulation than regulation_id",
        "amended_articles[0]": "must not be empty"}
