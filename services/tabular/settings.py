"""Settings of the tabular service (environment prefix LUMEN_TABULAR_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, setting


@dataclass
class TabularSettings(ModelServerSettings):
    port: int = setting(50056, "TCP port of the tabular service.")
    max_rows: int = setting(1024, "Most rows in one Predict call.")
