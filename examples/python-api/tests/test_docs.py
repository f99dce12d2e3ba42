"""README.md's tables are the service's vocabularies: reasons, metrics and
settings, each checked against the code so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from prometheus_client import CollectorRegistry

from upstream_api.config import load_config
from upstream_api.metrics import NAMES, Metrics
from upstream_api.reasons import UNAUTHORIZED_REASONS, UNAVAILABLE_REASONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def table(heading: str) -> list[str]:
    """First-column values (inside backticks) of the table under `## heading`."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def test_reasons_table_is_the_closed_set() -> None:
    assert table("Reasons") == [*UNAUTHORIZED_REASONS, *UNAVAILABLE_REASONS]


def test_metrics_table_is_every_metric() -> None:
    assert table("Metrics") == list(NAMES.values())
    registry = CollectorRegistry()
    Metrics(registry, config_labels={"issuer": "i", "audience": "a", "jwks_url": "u", "algorithms": "EdDSA"})
    exposed = {m.name + ("_total" if m.type == "counter" else "") for m in registry.collect()}
    assert set(NAMES.values()) <= exposed


class Recording(dict):
    """An environment that remembers which names were read."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the configuration reads named settings only")


def test_configuration_table_is_every_setting_read() -> None:
    env = Recording({"JWKS_URL": "http://127.0.0.1:1/jwks", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"})
    load_config(env)
    assert set(table("Configuration")) == env.read
