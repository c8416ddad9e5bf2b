"""The consultation service's configuration: window lengths and the pseudonym key are checked
at start, and a bad value names its variable."""

from datetime import timedelta

import pytest

from policy.common.v1 import common_pb2
from policykit.config import ConfigError
from services.consultation.config import ConsultationSettings, parse_duration, parse_windows

KEY = "k" * 32


@pytest.mark.parametrize("text, length", [
    ("P60D", timedelta(days=60)), ("P2W", timedelta(weeks=2)), ("PT30S", timedelta(seconds=30)),
    ("P1DT12H", timedelta(days=1, hours=12)), ("PT1H30M", timedelta(minutes=90)),
])
def test_durations(text, length):
    assert parse_duration(text) == length


@pytest.mark.parametrize("text", ["", "P", "PT", "60D", "P0D", "P1.5D", "PT1D", "p60d"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_window_per_regulation_type_with_a_default():
    settings = ConsultationSettings.from_env({
        "CONSULTATION_WINDOWS": "LAW=P60D, DECREE=P30D,DEFAULT=P20D",
        "CONSULTATION_PSEUDONYM_KEY": KEY})
    assert settings.window_for(common_pb2.REGULATION_TYPE_LAW) == timedelta(days=60)
    assert settings.window_for(common_pb2.REGULATION_TYPE_DECREE) == timedelta(days=30)
    assert settings.window_for(common_pb2.REGULATION_TYPE_CIRCULAR) == timedelta(days=20)
    assert ConsultationSettings.from_env({"CONSULTATION_PSEUDONYM_KEY": KEY}).window_for(
        common_pb2.REGULATION_TYPE_LAW) == timedelta(days=60)


@pytest.mark.parametrize("env, message", [
    ({"CONSULTATION_WINDOWS": "STATUTE=P60D"}, "CONSULTATION_WINDOWS: 'STATUTE' is not"),
    ({"CONSULTATION_WINDOWS": "LAW=60 days"}, "CONSULTATION_WINDOWS: LAW: '60 days'"),
    ({"CONSULTATION_PSEUDONYM_KEY": ""}, "CONSULTATION_PSEUDONYM_KEY must be set"),
    ({"CONSULTATION_PSEUDONYM_KEY": "short"}, "CONSULTATION_PSEUDONYM_KEY must be at least"),
    ({"CONSULTATION_MAX_IN_FLIGHT": "0"}, "CONSULTATION_MAX_IN_FLIGHT must be between"),
    ({"CONSULTATION_REPORT_BASE_URL": "ftp://x"}, "CONSULTATION_REPORT_BASE_URL must be"),
])
def test_bad_values_name_their_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        ConsultationSettings.from_env({"CONSULTATION_PSEUDONYM_KEY": KEY, **env})


def test_windows_text_is_read_entry_by_entry():
    windows, default = parse_windows("CIRCULAR=PT30S,,")
    assert windows == {common_pb2.REGULATION_TYPE_CIRCULAR: timedelta(seconds=30)}
    assert default == timedelta(days=60)
