"""The soak's report: one table of figures, with ``rich`` when it is installed, else plain text."""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from soak.harness import SoakResult
from soak.reconcile import Leg, Reconciliation
from soak.schedule import FAMILIES

MAX_LISTED = 8  # findings listed one by one in the report; the rest are counted


@dataclass(frozen=True)
class Report:
    """Everything the table shows, and the verdict."""

    command: str
    planned_runs: int
    batch_size: int
    result: SoakResult
    found: Reconciliation
    ports_left_open: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        return len(self.result.runs) >= self.planned_runs and not self.result.stopped_early

    @property
    def passed(self) -> bool:
        return self.found.ok and not self.ports_left_open

    def exit_code(self) -> int:
        """0 pass; 1 a duplicate, lost leg, outcome or row problem, or a port left open;
        2 the duration bound stopped the soak before all its runs."""
        if not self.passed:
            return 1
        return 0 if self.complete else 2

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order the table shows them."""
        r, f = self.result, self.found
        return [
            ("command", self.command),
            ("machine", machine()),
            ("runs", self._runs()),
            ("runs hit by a fault", f"{self._hit()} (in flight when one struck)"),
            *self._faults(),
            ("legs planned", str(len(f.legs))),
            ("orders at the broker", f"{f.orders} (our orderRefs; open, completed, executions)"),
            ("duplicates", _listed(len(f.duplicates), _refs(f.duplicates))),
            ("lost legs", _listed(len(f.lost), [_leg(leg) for leg in f.lost])),
            ("legs refused", _refused(f.refused)),
            ("unjournalled orders", _listed(len(f.unjournalled), _refs(f.unjournalled))),
            ("outcomes per key", self._outcomes()),
            ("outcome kinds", _counts(f.kinds) + _failures(f.failures)),
            ("dead-lettered keys", _listed(len(f.dead_lettered), f.dead_lettered)),
            ("BigQuery outcome rows", self._bigquery()),
            (
                "retries",
                f"{f.retried_runs} runs needed attempts > 1; {_adopted(f.legs)} legs adopted",
            ),
            ("push answers", _counts(Counter({str(k): v for k, v in r.push_answers.items()}))),
            ("time taken", f"{r.seconds:.0f} s"),
            ("ports closed", _ports(self.ports_left_open)),
            ("verdict", self._verdict()),
        ]

    def _hit(self) -> int:
        return sum(self.result.hit(run) for run in self.result.runs)

    def _runs(self) -> str:
        r = self.result
        intents = Counter(run.spec.intent for run in r.runs)
        batches = len({run.batch for run in r.runs})
        text = f"{len(r.runs)} of {self.planned_runs} in {batches} batches of up to "
        text += f"{self.batch_size} ({_counts(intents)})"
        return text + (f"; {r.stopped_early}" if r.stopped_early else "")

    def _faults(self) -> list[tuple[str, str]]:
        rows = []
        for family, kinds in FAMILIES.items():
            done = Counter(i.kind for i in self.result.injections if i.injected)
            missed = Counter(i.kind for i in self.result.injections if not i.injected)
            parts = [
                f"{k} {done[k]}" + (f" (+{missed[k]} missed)" if missed[k] else "") for k in kinds
            ]
            rows.append((f"faults: {family}", ", ".join(parts)))
        return rows  # fmt: skip

    def _outcomes(self) -> str:
        f = self.found
        spread = ", ".join(
            f"{n} id{'s' if n != 1 else ''}: {c} keys" for n, c in sorted(f.ids_per_key.items())
        )
        problems = f.missing + f.extra
        text = f"{spread} (must be 1); {f.messages} messages with republished copies"
        return text + (f"; PROBLEMS: {problems[:MAX_LISTED]}" if problems else "")  # fmt: skip

    def _bigquery(self) -> str:
        f = self.found
        text = f"{f.bigquery_rows} rows"
        if f.bigquery_wrong:
            return text + f"; NOT one per key: {f.bigquery_wrong[:MAX_LISTED]}"
        return text + " (one per key)"

    def _verdict(self) -> str:
        if not self.passed:
            return "FAIL"
        return "PASS" if self.complete else "PASS so far, but INCOMPLETE"

    def notes(self) -> list[str]:
        """The faults that were armed but whose moment never came, and why."""
        return [f"{i.kind}: {i.note}" for i in self.result.injections if not i.injected]


def render(report: Report, style: str = "auto") -> str:
    """The report as a table: ``rich``'s when it is installed (``auto``) or asked for
    (``rich``), else aligned plain text (``plain``, or ``auto`` without rich)."""
    if style == "plain":
        return _render_plain(report)
    try:
        return _render_rich(report)
    except ImportError:
        if style == "rich":
            raise
        return _render_plain(report)


def _render_plain(report: Report) -> str:
    rows = report.rows()
    width = max(len(label) for label, _ in rows)
    lines = ["Soak report", "-" * 11]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]
    notes = report.notes()
    if notes:
        lines += ["", "faults not injected (their moment never came):"]
        lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def _render_rich(report: Report) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Soak report", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in report.rows():
        table.add_row(label, value)
    console = Console(record=True, width=140)
    with console.capture():
        console.print(table)
        for note in report.notes():
            console.print(f"not injected: {note}")
    return console.export_text()


def machine() -> str:
    """Cores, CPU model, memory, OS and Python of this machine."""
    model = _cpuinfo("model name") or platform.processor() or "unknown CPU"
    memory = _meminfo_gib()
    uname = platform.uname()
    parts = [
        f"{os.cpu_count()} cores ({model})",
        f"{memory} GiB" if memory else "",
        f"{uname.system} {uname.release} {uname.machine}",
        f"Python {platform.python_version()}",
    ]
    return ", ".join(p for p in parts if p)  # fmt: skip


def _cpuinfo(field: str) -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _meminfo_gib() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            kib = int(info.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return round(kib / 1024 / 1024)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def _failures(failures: Counter[str]) -> str:
    return f" (failures: {_counts(failures)})" if failures else ""


def _listed(count: int, items: Iterable[str]) -> str:
    listed = list(items)[:MAX_LISTED]
    return str(count) if not count else f"{count}: {'; '.join(listed)}"


def _refs(refs: dict[str, set[int]]) -> list[str]:
    return [f"{ref} permIds {sorted(perms)}" for ref, perms in refs.items()]


def _leg(leg: Leg) -> str:
    why = f", rejected: IB {leg.error_code}" if leg.error_code else ""
    return f"{leg.key}/{leg.leg_id} ({leg.state}{why})"


def _refused(refused: list[Leg]) -> str:
    rejected = sum(leg.rejected for leg in refused)
    unsent = len(refused) - rejected
    return f"{len(refused)} ({rejected} rejected by IB, {unsent} unsent under a failed outcome)"


def _ports(left_open: tuple[int, ...]) -> str:
    return "yes" if not left_open else f"NO: {list(left_open)}"


def _adopted(legs: list[Leg]) -> int:
    return sum(leg.adopted for leg in legs)
