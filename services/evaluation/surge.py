"""Misinformation surge detection for one regulation: pure logic over the stream of
social-listening signals, so it can be tested on synthetic streams.

Signals are summed into tumbling windows of event time (aligned to the epoch: hour windows
start on the hour). The baseline is an exponentially weighted moving average of the closed
windows, empty ones counting as zero. A surge is raised, once, as soon as the open window's
volume exceeds `factor` × baseline and `floor`; the detector stays in the surge until a closed
window falls back to `reset_factor` × baseline, so a sustained plateau raises one alert and is
then learnt as the new normal. Nothing is raised during the first `warmup` windows, while the
baseline is still unknown. A signal for a window already closed is too late to change a
decision and is left out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SurgeRule:
    window: timedelta = timedelta(hours=1)
    factor: float = 3.0
    reset_factor: float = 1.5
    # Least volume in a window for a surge: a handful of posts is no campaign.
    floor: int = 50
    warmup: int = 3
    # Weight of the newest closed window in the baseline.
    smoothing: float = 0.3


@dataclass
class Detector:
    """The state of one regulation's detector; JSON-friendly for storage."""

    window_start: float | None = None  # epoch seconds
    volume: int = 0
    claims: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    baseline: float = 0.0
    windows: int = 0
    surging: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict) -> "Detector":
        return cls(**state)


@dataclass(frozen=True)
class Surge:
    window_start: datetime
    volume: int
    # Per hour, over the window's length.
    observed_rate: float
    baseline_rate: float
    # What carried most of the window's volume.
    claim: str
    region_id: str
    source: str


def _top(counts: dict[str, int]) -> str:
    return max(sorted(counts), key=counts.__getitem__) if counts else ""


def _close(detector: Detector, rule: SurgeRule) -> None:
    if detector.windows == 0:
        detector.baseline = float(detector.volume)
    else:
        if detector.surging and detector.volume <= rule.reset_factor * detector.baseline:
            detector.surging = False
        detector.baseline += rule.smoothing * (detector.volume - detector.baseline)
    detector.windows += 1
    detector.volume = 0
    detector.claims, detector.regions, detector.sources = {}, {}, {}


def observe(detector: Detector, rule: SurgeRule, at: datetime, volume: int, claim: str,
            region_id: str, source: str) -> Surge | None:
    """Adds one signal to the detector (changed in place); returns the surge it reveals, if
    this signal is the one that makes the open window a surge."""
    width = rule.window.total_seconds()
    seconds = (at - _EPOCH).total_seconds()
    start = seconds - seconds % width
    if detector.window_start is None:
        detector.window_start = start
    if start < detector.window_start:
        return None
    if start > detector.window_start:
        _close(detector, rule)
        empty = int(round((start - detector.window_start) / width)) - 1
        if empty:
            # Empty windows are zeros in the average and end any surge.
            detector.baseline *= (1 - rule.smoothing) ** empty
            detector.windows += empty
            detector.surging = False
        detector.window_start = start
    detector.volume += volume
    for counts, key in ((detector.claims, claim), (detector.regions, region_id),
                        (detector.sources, source)):
        counts[key] = counts.get(key, 0) + volume
    if (detector.surging or detector.windows < rule.warmup or detector.volume < rule.floor
            or detector.volume <= rule.factor * detector.baseline):
        return None
    detector.surging = True
    hours = width / 3600
    return Surge(window_start=_EPOCH + timedelta(seconds=detector.window_start),
                 volume=detector.volume, observed_rate=detector.volume / hours,
                 baseline_rate=detector.baseline / hours, claim=_top(detector.claims),
                 region_id=_top(detector.regions), source=_top(detector.sources))
