"""A doctor's findings: one line per check, ✔ (fine), ! (worth knowing, nothing fails) or ✗ (the job
would fail, with the fix)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

OK, WARN, FAIL = "ok", "warn", "fail"
SYMBOLS = {OK: "✔", WARN: "!", FAIL: "✗"}


@dataclass(frozen=True)
class Check:
    """One finding. ``detail`` and ``fix`` name things (principals, hosts, namespaces), never secrets."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{SYMBOLS[self.status]} {self.name}: {self.detail}"
        return f"{text}\n    fix: {self.fix}" if self.fix and self.status != OK else text


class Report:
    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self.checks = list(checks)

    def __repr__(self) -> str:
        counts = {s: sum(c.status == s for c in self.checks) for s in SYMBOLS}
        return f"Report({counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failures)"

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def exit_status(self) -> int:
        """0 when nothing would fail (warnings allowed), else 1 (2 is the CLI's bad-input status)."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        if not self.failed:
            warnings = sum(c.status == WARN for c in self.checks)
            return f"nothing would fail ({len(self.checks)} checks" + (f", {warnings} warnings)" if warnings else ")")
        return f"{len(self.failed)} of {len(self.checks)} checks failed"

    def to_json(self) -> str:
        return json.dumps({"ok": not self.failed, "checks": [asdict(c) for c in self.checks]}, indent=2,
                          ensure_ascii=False)
