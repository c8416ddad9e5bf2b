import pytest

from policykit.text import looks_corrupted, nfc, without_diacritics


@pytest.mark.parametrize("text", [
    "Thủ tướng Chính phủ", "Luật Đất đai (sửa đổi): lấy ý kiến Nhân dân",
    "Vì sao? Bởi vì", "Có đúng không?", "Điều 12, khoản 2",
])
def test_sound_text_is_not_flagged(text):
    assert not looks_corrupted(text)


@pytest.mark.parametrize("text", [
    "Th? t??ng", "Lu?t ??t ?ai", "Thá»§ tÆ°á»›ng", "Nhân d\ufffdn",
])
def test_corrupted_text_is_flagged(text):
    assert looks_corrupted(text)


def test_nfc_and_sms_copy():
    decomposed = "Thu\u0309 tu\u031bo\u031b\u0301ng"
    assert nfc(decomposed) == "Thủ tướng"
    assert without_diacritics("Đắk Lắk, Thủ tướng") == "Dak Lak, Thu tuong"
