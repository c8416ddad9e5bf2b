import shutil
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from policykit.reference import DATA_DIR, ReferenceData, UnknownReference, default

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
BEFORE, AFTER = date(2024, 5, 1), date(2026, 1, 1)


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return default()


def test_default_loads_once():
    assert default() is default()


def test_63_units_before_the_reorganisation_and_34_after(ref):
    assert len(ref.provinces_in_force(date(2025, 6, 30))) == 63
    assert len(ref.provinces_in_force(date(2025, 7, 1))) == 34
    assert all(p.id.isdigit() for p in ref.provinces_in_force(BEFORE))


def test_a_2008_code_resolves_to_its_2025_unit_from_the_merger(ref):
    assert ref.province_on("02", BEFORE).name == "Hà Giang"
    assert ref.province_on("02", date(2025, 6, 30)).id == "02"
    unit = ref.province_on("02", AFTER)
    assert unit.id == "tuyen-quang" and unit.name == "Tuyên Quang"
    assert unit.border and unit.borders == {"CN"} and unit.mountainous
    assert {"border", "mountainous"} <= unit.attributes()
    assert set(unit.predecessors) == {"02", "08"}
    assert ref.province("02").merged_into == "tuyen-quang"


def test_a_2025_id_is_not_mapped_backwards(ref):
    assert ref.province_on("tuyen-quang", BEFORE) is ref.province("tuyen-quang")


@pytest.mark.parametrize("unit_id", ["quang-ninh", "khanh-hoa", "an-giang", "tp-ho-chi-minh"])
def test_island_flags_survive_the_merger(ref, unit_id):
    assert ref.province_on(unit_id, AFTER).island
    assert "island" in ref.province(unit_id).attributes()


def test_2025_flags_are_the_union_of_the_predecessors(ref):
    for unit in ref.provinces_in_force(AFTER):
        parts = [ref.province(code) for code in unit.predecessors]
        assert unit.borders == frozenset().union(*(p.borders for p in parts))
        assert unit.coastal == any(p.coastal for p in parts)
        assert unit.island == any(p.island for p in parts)
        assert unit.mountainous == any(p.mountainous for p in parts)
    assert ref.province("tp-ho-chi-minh").attributes() == {"coastal", "island"}
    assert ref.province("01").attributes() == frozenset()


def test_a_merged_ministry_resolves_to_its_successor(ref):
    assert ref.agency_on("btnmt", date(2024, 1, 1)).id == "btnmt"
    assert ref.agency_on("btnmt", date(2025, 2, 28)).id == "btnmt"
    successor = ref.agency_on("btnmt", date(2025, 6, 1))
    assert successor.id == "bnnmt" and successor.name == "Bộ Nông nghiệp và Môi trường"
    assert ref.agency_on("btttt", date(2025, 3, 1)).id == "bkhcn"
    assert ref.agency_on("bkhcn", date(2024, 1, 1)).id == "bkhcn"
    assert ref.agency("btnmt").succeeded_by == "bnnmt"


def test_an_agency_asked_for_before_it_existed_is_unknown(ref):
    with pytest.raises(UnknownReference) as raised:
        ref.agency_on("bnnmt", date(2024, 1, 1))
    assert "bnnmt" in str(raised.value) and "2024-01-01" in str(raised.value)


@pytest.mark.parametrize("lookup", [
    lambda ref: ref.agency("bxyz"),
    lambda ref: ref.agency_on("bxyz", AFTER),
    lambda ref: ref.province("bxyz"),
    lambda ref: ref.province_on("bxyz", AFTER),
])
def test_an_unknown_id_is_named(ref, lookup):
    with pytest.raises(UnknownReference, match="'bxyz'") as raised:
        lookup(ref)
    assert isinstance(raised.value, KeyError)


def test_agencies_in_force_by_kind(ref):
    press = {a.id for a in ref.agencies_in_force(AFTER, kind="press-agency")}
    assert press == {"ttxvn", "vtv", "vov", "nhandan", "qdnd", "baochinhphu"}
    before = {a.id for a in ref.agencies_in_force(date(2025, 2, 28), kind="ministry")}
    after = {a.id for a in ref.agencies_in_force(date(2025, 3, 1), kind="ministry")}
    assert {"btnmt", "btttt"} <= before - after and {"bnnmt", "bdttg"} <= after - before
    with pytest.raises(ValueError, match="newspaper"):
        ref.agencies_in_force(AFTER, kind="newspaper")


def test_text_is_nfc(ref):
    names = [p.name for p in ref.provinces_in_force(BEFORE) + ref.provinces_in_force(AFTER)]
    names += [a.name for a in ref.agencies_in_force(BEFORE) + ref.agencies_in_force(AFTER)]
    assert all(unicodedata.is_normalized("NFC", name) for name in names)


def test_decomposed_input_is_normalised_on_load(tmp_path):
    data = _copy(tmp_path)
    path = data / "agencies.csv"
    path.write_text(unicodedata.normalize("NFD", path.read_text("utf-8")), "utf-8")
    assert ReferenceData.load(data).agency("bnnmt").name == "Bộ Nông nghiệp và Môi trường"


@pytest.mark.parametrize("name", ["agencies.csv", "provinces-2008.csv", "provinces-2025.csv"])
def test_vendored_copies_equal_the_shared_data(name):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present")
    assert (DATA_DIR / name).read_bytes() == (SHARED_DATA / name).read_bytes()


@pytest.mark.parametrize("name, old, new, line, field", [
    ("provinces-2008.csv", "30,lai-chau", "30,x", 9, "merged_into"),
    ("provinces-2025.csv", ",08;02,", ",08;03,", 13, "predecessor_codes"),
    ("agencies.csv", "trường,ministry,,2025-02-28,bnnmt", "trường,ministry,,2025-02-28,x", 16,
     "succeeded_by"),
    ("agencies.csv", ",2025-02-28,btc", ",2025-02-31,btc", 14, "valid_to"),
    ("province-attributes-2008.csv", "02,no,yes", "02,no,maybe", 3, "mountainous"),
])
def test_bad_data_names_file_line_and_field(tmp_path, name, old, new, line, field):
    data = _copy(tmp_path)
    path = data / name
    text = path.read_text("utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), "utf-8")
    with pytest.raises(ValueError, match=f"{name}, line {line}, field '{field}'"):
        ReferenceData.load(data)


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA_DIR, tmp_path / "reference_data"))
