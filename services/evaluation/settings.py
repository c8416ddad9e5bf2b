"""The evaluation service's own configuration, read from the environment beside the shared
one (policykit.config) and validated at start; a bad value names its variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Mapping

from policykit.config import ConfigError, env_int, env_str

from services.evaluation.surge import SurgeRule

DEFAULT_POPULATION_CSV = Path(__file__).with_name("data") / "population-2025.csv"


def env_float(name: str, default: float, *, minimum: float, maximum: float,
              env: Mapping[str, str] = os.environ) -> float:
    """Returns the variable as a number within [minimum, maximum]."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class EvaluationSettings:
    dashboard_port: int
    population_csv: Path
    # Comments per 100,000 inhabitants that earn a province the full two-way points.
    comments_per_100k_target: float
    scorecard_publish_interval_s: int
    delivery_batch_max_records: int
    surge: SurgeRule

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "EvaluationSettings":
        """Reads EVALUATION_DASHBOARD_PORT, POPULATION_CSV, COMMENTS_PER_100K_TARGET,
        SCORECARD_PUBLISH_INTERVAL_S, DELIVERY_BATCH_MAX_RECORDS and the SURGE_* variables."""
        population_csv = Path(env_str("POPULATION_CSV", str(DEFAULT_POPULATION_CSV), env=env))
        if not population_csv.is_file():
            raise ConfigError(f"POPULATION_CSV: {population_csv} is not a file")
        factor = env_float("SURGE_FACTOR", 3.0, minimum=1.0, maximum=1000.0, env=env)
        return cls(
            dashboard_port=env_int("EVALUATION_DASHBOARD_PORT", 0, maximum=65535, env=env),
            population_csv=population_csv,
            comments_per_100k_target=env_float("COMMENTS_PER_100K_TARGET", 5.0, minimum=0.001,
                                               maximum=100_000.0, env=env),
            scorecard_publish_interval_s=env_int("SCORECARD_PUBLISH_INTERVAL_S", 60, minimum=1,
                                                 env=env),
            delivery_batch_max_records=env_int("DELIVERY_BATCH_MAX_RECORDS", 20_000, minimum=1,
                                               env=env),
            surge=SurgeRule(
                window=timedelta(minutes=env_int("SURGE_WINDOW_MINUTES", 60, minimum=1,
                                                 maximum=7 * 24 * 60, env=env)),
                factor=factor,
                reset_factor=env_float("SURGE_RESET_FACTOR", 1.5, minimum=0.0, maximum=factor,
                                       env=env),
                floor=env_int("SURGE_FLOOR", 50, minimum=1, env=env),
                warmup=env_int("SURGE_WARMUP_WINDOWS", 3, minimum=0, maximum=1000, env=env),
                smoothing=env_float("SURGE_SMOOTHING", 0.3, minimum=0.01, maximum=1.0, env=env)),
        )
