"""Surge detection on synthetic signal streams: a flat or noisy stream raises nothing, a step
raises exactly one alert, and a second surge after a calm raises a second one."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from services.evaluation.surge import Detector, SurgeRule, observe

START = datetime(2033, 4, 1, tzinfo=timezone.utc)
RULE = SurgeRule()


def run(stream, rule: SurgeRule = RULE, detector: Detector | None = None) -> list:
    """Feeds (minutes from START, volume, claim, region) signals; returns the surges."""
    detector = detector or Detector()
    surges = []
    for minute, volume, claim, region in stream:
        surge = observe(detector, rule, START + timedelta(minutes=minute), volume, claim,
                        region, "mạng xã hội")
        if surge:
            surges.append((minute, surge))
    return surges


def every_5_minutes(hours: float, volume, claim="Thu hồi đất không bồi thường",
                    region="tuyen-quang", start_minute: int = 0):
    """A signal every five minutes; `volume` is a number or a function of the minute."""
    for minute in range(start_minute, start_minute + int(hours * 60), 5):
        yield minute, volume(minute) if callable(volume) else volume, claim, region


def test_a_flat_stream_raises_nothing():
    assert run(every_5_minutes(48, 10)) == []


def test_a_noisy_stream_raises_nothing():
    noise = random.Random(7)
    assert run(every_5_minutes(72, lambda minute: noise.randint(5, 15))) == []


def test_a_step_raises_one_alert_early_in_the_surge_window():
    stream = [*every_5_minutes(6, 10), *every_5_minutes(12, 100, start_minute=6 * 60)]
    [(minute, surge)] = run(stream)
    assert 6 * 60 <= minute < 7 * 60  # within the first surging hour, not at its end
    assert surge.window_start == START + timedelta(hours=6)
    assert surge.baseline_rate == pytest.approx(120)  # 12 signals of 10 an hour
    assert surge.observed_rate > 3 * surge.baseline_rate
    assert (surge.claim, surge.region_id, surge.source) == (
        "Thu hồi đất không bồi thường", "tuyen-quang", "mạng xã hội")


def test_two_surges_separated_by_a_calm_raise_two_alerts():
    stream = [*every_5_minutes(6, 10), *every_5_minutes(2, 100, start_minute=360),
              *every_5_minutes(10, 10, start_minute=480),
              *every_5_minutes(2, 100, start_minute=1080)]
    assert [minute // 60 for minute, _ in run(stream)] == [6, 18]


def test_the_dominant_claim_and_region_are_named():
    stream = [*every_5_minutes(4, 10),
              *every_5_minutes(1, 60, claim="Mỗi hộ phải nộp phí mới", region="cao-bang",
                               start_minute=240),
              *every_5_minutes(1, 5, start_minute=240)]
    [(_, surge)] = run(sorted(stream))
    assert (surge.claim, surge.region_id) == ("Mỗi hộ phải nộp phí mới", "cao-bang")


def test_nothing_is_raised_while_warming_up_or_below_the_floor():
    # A burst in the first hour has no baseline to compare with.
    assert run(every_5_minutes(1, 500)) == []
    # From 12 to 48 a window is a fourfold rise, but under the floor of 50 a window.
    quiet = [*every_5_minutes(6, 1),
             *every_5_minutes(1, 4, start_minute=360)]
    assert run(quiet) == []


def test_late_signals_for_a_closed_window_are_left_out():
    detector = Detector()
    run(every_5_minutes(5, 10), detector=detector)
    baseline = detector.baseline
    assert run([(30, 10_000, "muộn", "cao-bang")], detector=detector) == []
    assert detector.baseline == baseline


def test_an_empty_gap_lowers_the_baseline_and_ends_a_surge():
    detector = Detector()
    run([*every_5_minutes(6, 10), *every_5_minutes(1, 100, start_minute=360)],
        detector=detector)
    assert detector.surging
    run([(30 * 60, 1, "x", "cao-bang")], detector=detector)
    assert not detector.surging
    assert detector.baseline < 1


def test_the_state_survives_a_round_trip_through_json():
    detector = Detector()
    run(every_5_minutes(3, 10), detector=detector)
    assert Detector.from_json(detector.to_json()) == detector
