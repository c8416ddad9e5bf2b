"""Population per province, the input data behind comments per capita (see data/README.md)."""

from __future__ import annotations

import csv
from pathlib import Path

from policykit.config import ConfigError
from policykit.reference import ReferenceData, UnknownReference
from policykit.text import nfc


def load(path: Path, reference: ReferenceData) -> dict[str, int]:
    """Reads province_id → population; a bad row raises ConfigError naming file, line and
    field, so the service stops at start instead of scoring with wrong denominators."""
    population: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        for column in ("province_id", "population"):
            if column not in (reader.fieldnames or ()):
                raise ConfigError(f"POPULATION_CSV: {path}, line 1: column {column!r} is missing")
        for row in reader:
            where = f"POPULATION_CSV: {path}, line {reader.line_num}"
            province_id = nfc((row["province_id"] or "").strip())
            try:
                reference.province(province_id)
            except UnknownReference:
                raise ConfigError(f"{where}, field 'province_id': unknown province "
                                  f"{province_id!r}") from None
            if province_id in population:
                raise ConfigError(f"{where}, field 'province_id': {province_id!r} appears twice")
            raw = (row["population"] or "").strip()
            if not raw.isdigit() or int(raw) == 0:
                raise ConfigError(f"{where}, field 'population': {raw!r} is not a positive "
                                  "whole number")
            population[province_id] = int(raw)
    return population
