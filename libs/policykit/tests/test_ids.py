"""The text UUIDs are the uuid module's, digit for digit: task ids are name-based, and a
redelivered event must plan the tasks it planned before, whichever release plans them."""

import uuid

from policykit.ids import name_uuid, random_uuid, uuid_text

NAMESPACE = uuid.UUID("6f1c1b0e-8a51-4a8e-9a4f-3c9b1f2d7e10")


def test_name_uuid_is_uuid5():
    names = [f"{uuid.uuid4()}/rule-{n}/{n % 3}/HN,HP" for n in range(2000)]
    names += ["", "Hà Nội/Thông cáo", "\u0000", "x" * 10_000]
    for name in names:
        assert name_uuid(NAMESPACE, name) == str(uuid.uuid5(NAMESPACE, name))
    assert name_uuid(uuid.NAMESPACE_URL, "policy/consultation/reg-1") == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "policy/consultation/reg-1"))


def test_random_uuid_is_a_version_4_uuid():
    made = {random_uuid() for _ in range(2000)}
    assert len(made) == 2000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_uuid_text_is_the_canonical_form():
    for value in (0, 1, 2**128 - 1, uuid.uuid4().int):
        assert uuid_text(value) == str(uuid.UUID(int=value))
