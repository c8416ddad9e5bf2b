"""The consultation service's own configuration, read from the environment at start; a bad
value raises ConfigError naming the variable (the service then exits with code 2).

- CONSULTATION_WINDOWS: window length per regulation type, as ISO 8601 durations of weeks,
  days, hours, minutes and seconds, e.g. `LAW=P60D,DECREE=P30D,CIRCULAR=PT30S,DEFAULT=P60D`;
  types not named get DEFAULT (60 days unless given).
- CONSULTATION_PSEUDONYM_KEY (required): the secret of the commenters' pseudonyms
  (HMAC-SHA256), at least 32 characters.
- CONSULTATION_MAX_IN_FLIGHT (20000): comments accepted for storage and not yet stored;
  beyond it intake answers RESOURCE_EXHAUSTED.
- CONSULTATION_SOURCE_RATE (2000) and CONSULTATION_SOURCE_BURST (20000): comments a second
  each source (an authenticated organisation, else a caller's address) may send, and the burst
  it may send at once; 0 turns the limits off. Over it, intake answers RESOURCE_EXHAUSTED with
  the time to wait. Each replica counts what it takes itself: with N replicas behind one
  address a source may send up to N times as much.
- CONSULTATION_SWEEP_INTERVAL_MS (1000): how often due windows are closed and waiting texts
  grouped.
- CONSULTATION_REPORT_PORT (0, a free port): the HTTP port serving the reports at
  /reports/<regulation_id>.
- CONSULTATION_REPORT_BASE_URL (http://localhost:<port>): that server's public address, used
  in report_url.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

from policy.common.v1 import common_pb2
from policykit.config import ConfigError, env_int, env_str

DEFAULT_WINDOW = timedelta(days=60)
_DURATION = re.compile(
    r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_TYPE_PREFIX = "REGULATION_TYPE_"
MIN_PSEUDONYM_KEY = 32


def parse_duration(text: str) -> timedelta:
    """Reads an ISO 8601 duration such as P60D, P2W or PT30S; raises ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration like P60D or PT30S")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    length = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if length <= timedelta(0):
        raise ValueError(f"{text!r} is not longer than zero")
    return length


def parse_windows(text: str, variable: str = "CONSULTATION_WINDOWS"
                  ) -> tuple[dict[int, timedelta], timedelta]:
    """Reads `TYPE=DURATION,…` into (length per regulation type, default length)."""
    types = {name.removeprefix(_TYPE_PREFIX): number
             for name, number in common_pb2.RegulationType.items() if number}
    windows: dict[int, timedelta] = {}
    default = DEFAULT_WINDOW
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, duration = (piece.strip() for piece in entry.partition("="))
        if name != "DEFAULT" and name not in types:
            raise ConfigError(f"{variable}: {name!r} is not DEFAULT or a regulation type "
                              f"({', '.join(types)})")
        try:
            length = parse_duration(duration)
        except ValueError as error:
            raise ConfigError(f"{variable}: {name}: {error}") from None
        if name == "DEFAULT":
            default = length
        else:
            windows[types[name]] = length
    return windows, default


@dataclass(frozen=True)
class ConsultationSettings:
    windows: dict[int, timedelta]
    default_window: timedelta
    pseudonym_key: bytes
    max_in_flight: int
    source_rate: int
    source_burst: int
    sweep_interval_s: float
    report_port: int
    report_base_url: str | None

    def window_for(self, regulation_type: int) -> timedelta:
        """Returns how long a consultation on a regulation of this type lasts."""
        return self.windows.get(regulation_type, self.default_window)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ConsultationSettings:
        windows, default = parse_windows(env.get("CONSULTATION_WINDOWS", ""))
        key = env_str("CONSULTATION_PSEUDONYM_KEY", env=env)
        if len(key) < MIN_PSEUDONYM_KEY:
            raise ConfigError(f"CONSULTATION_PSEUDONYM_KEY must be at least {MIN_PSEUDONYM_KEY}"
                              " characters (e.g. the output of `openssl rand -hex 32`)")
        base_url = env.get("CONSULTATION_REPORT_BASE_URL", "").rstrip("/") or None
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ConfigError("CONSULTATION_REPORT_BASE_URL must be an http:// or https:// URL")
        return cls(
            windows=windows, default_window=default, pseudonym_key=key.encode("utf-8"),
            max_in_flight=env_int("CONSULTATION_MAX_IN_FLIGHT", 20_000, minimum=1, env=env),
            source_rate=env_int("CONSULTATION_SOURCE_RATE", 2_000, env=env),
            source_burst=env_int("CONSULTATION_SOURCE_BURST", 20_000, minimum=1, env=env),
            sweep_interval_s=env_int("CONSULTATION_SWEEP_INTERVAL_MS", 1000, minimum=10,
                                     env=env) / 1000,
            report_port=env_int("CONSULTATION_REPORT_PORT", 0, maximum=65535, env=env),
            report_base_url=base_url)
