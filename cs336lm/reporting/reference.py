"""Other setups' published numbers (workflow/report/reference.yaml) and the handout's targets
(cs336lm.reporting.targets) for the report's "reference" column: shown beside ours, each with its source, and
replaced by "not comparable" when our numbers are not from the course's data at the course's scale
(cs336lm.reporting.provenance), the reason stated under the section."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cs336lm.reporting import targets

NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class ReferenceValue:
    value: Any
    source: str
    unit: str | None = None
    note: str | None = None


class Reference:
    """The reference numbers and their sources; `not_comparable` (why our numbers are of another setup: the demo's
    text, the user's data, a reduced model) hides the values."""

    def __init__(self, path: str | os.PathLike | None, not_comparable: str | None = None):
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else {}
        self.sources: dict[str, dict[str, str]] = {**data.get("sources", {}), **targets.SOURCES}
        values = {**data.get("values", {}), **targets.VALUES}
        self.values = {key: ReferenceValue(**spec) for key, spec in values.items()}
        self.not_comparable = not_comparable
        self.used: set[str] = set()

    @property
    def comparable(self) -> bool:
        return self.not_comparable is None

    def get(self, key: str) -> ReferenceValue | None:
        value = self.values.get(key)
        if value is not None:
            self.used.add(value.source)
        return value

    def cell(self, key: str, fmt=None) -> str:
        """The column entry for one quantity: its value (formatted by `fmt`), "not comparable", or "—" if none."""
        value = self.get(key)
        if value is None:
            return "—"
        if not self.comparable:
            return NOT_COMPARABLE
        text = fmt(value.value) if fmt and not isinstance(value.value, str) else str(value.value)
        marker = f"[{self.source_marker(value.source)}]"
        return f"{text} {marker}" + (f" ({value.note})" if value.note else "")

    def source_marker(self, source: str) -> str:
        return source.replace("_", " ")

    def sources_note(self) -> str:
        """One line under a section that used the reference: whose numbers they are (or why they are hidden)."""
        if not self.used:
            return ""
        if not self.comparable:
            return ("_Reference: published numbers of complete course runs exist for these quantities but are not "
                    f"comparable with ours: {self.not_comparable}._")
        markers = ", ".join(f"[{self.source_marker(s)}]" for s in sorted(self.used))
        return f"_Reference: another setup's numbers, not ours ({markers}: see \"Reference numbers\" at the top)._"

    def describe_sources(self) -> str:
        """Every source with its setup, for the top of the report."""
        return "\n".join(f"- [{self.source_marker(name)}] {spec['title']}: {spec['setup']}."
                         for name, spec in self.sources.items())
