"""A job's summary: its result rows counted by what customers segment on (the verdict of an email, a phone's line type
and region, an IP's country, ...).

Counted by the finalizer from the part files it assembles into the result (functions/logic/finalize.py), so the
summary describes exactly the rows of the result, each once, whatever happened to the batches on the way (a batch
counted once, a redelivery whose part was written again); a segment download (`validity=`) filters the same cells.

Every dimension puts every row in one bucket: the counts of each dimension add up to the rows of the result (a
row with no value for it, an `error` row for example, is `unknown`).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from functions.enrich import result_columns
from functions.logic import results

UNKNOWN = "unknown"
# An email's verdict, in the order customers read them (NeverBounce, ZeroBounce and Kickbox segment the same way):
# risky is well-formed but likely to bounce or reach nobody (disposable, role account, catch-all, implicit MX).
VERDICTS: tuple[str, ...] = ("valid", "risky", "invalid", UNKNOWN)


def _value(cell: str) -> str:
    return cell or UNKNOWN


def _words(**meaning: str) -> Callable[[str], str]:
    # Booleans and flags read as words a person understands; anything else (an empty cell) is unknown.
    return lambda cell: meaning.get(cell, UNKNOWN)


def _verdict(cell: str) -> str:
    return cell if cell in VERDICTS else UNKNOWN


def _found(cell: str) -> str:
    return "found" if cell else UNKNOWN


@dataclass(frozen=True)
class Dimension:
    """One way of counting rows: the summary key, the result column it reads, how a cell becomes a bucket, and the
    buckets always shown (in this order, zeros included)."""

    key: str
    column: str
    bucket: Callable[[str], str] = _value
    fixed: tuple[str, ...] = ()


DIMENSIONS: dict[str, tuple[Dimension, ...]] = {
    "email": (Dimension("validity", "validity", _verdict, VERDICTS),),
    "phone": (Dimension("line_type", "line_type"), Dimension("region", "region")),
    "ip": (Dimension("country", "country_code"),),
    # A domain: whether its DNS answers (`unknown` while DNS lookups are off), and under which public suffix.
    "domain": (
        Dimension("dns", "dns_exists", _words(true="exists", false="not_found")),
        Dimension("public_suffix", "public_suffix"),
    ),
    # A company: the country its name or domain points to, and whether a website was found (online sources only).
    "company": (Dimension("country", "country_hint"), Dimension("website", "website_url", _found)),
    "darkweb": (Dimension("breached", "breached", _words(true="breached", false="not_breached")),),
}


def email_verdict(cell: str) -> str:
    """The segment of an email row by its `validity` cell: valid, risky, invalid, or unknown (an `error` row has no
    verdict)."""
    return _verdict(cell.strip())


def verdict_offset(job_type: str) -> int | None:
    """Where the `validity` cell of a result row is, counted from its end (a negative index, unaffected by how many
    input columns the row has); None for a type without verdicts."""
    columns = result_columns(job_type)
    if job_type != "email" or "validity" not in columns:
        return None
    return columns.index("validity") - len(columns) - len(results.TRAILER)


@dataclass
class Tally:
    """Counts result rows as they pass, by the dimensions of the job's type."""

    job_type: str
    rows: int = 0
    counters: dict[str, Counter[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        columns = result_columns(self.job_type)
        n_added = len(columns) + len(results.TRAILER)
        self._dimensions = [(d, columns.index(d.column) - n_added) for d in DIMENSIONS.get(self.job_type, ())]
        for dimension, _ in self._dimensions:
            self.counters.setdefault(dimension.key, Counter())

    def add_rows(self, rows: Iterable[Sequence[str]]) -> None:
        """Count result rows (input cells, then the type's columns, then status and error)."""
        listed = rows if isinstance(rows, list) else list(rows)
        self.rows += len(listed)
        for dimension, offset in self._dimensions:
            # Distinct cells first, each read once: a part has few distinct verdicts, countries or line types.
            cells = Counter(row[offset] if len(row) >= -offset else "" for row in listed)
            counter = self.counters[dimension.key]
            for cell, n in cells.items():
                counter[dimension.bucket(results.unguard_cell(cell).strip())] += n

    def add_part(self, data: bytes, delimiter: str) -> None:
        """Count the rows of a part file (UTF-8 CSV without a header, as the worker wrote it)."""
        text = data.decode("utf-8")
        if '"' in text or not self._dimensions:
            self.add_rows(list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)))
            return
        # No quote anywhere: no cell holds a delimiter or a line break (csv.writer would have quoted it), so each
        # line is a row and only its last cells need splitting (about 4x faster than csv on a 1,000,000-row job).
        tail = -min(offset for _, offset in self._dimensions)
        lines = text.split("\r\n")
        if lines and not lines[-1]:
            lines.pop()
        self.add_rows([line.rsplit(delimiter, tail) for line in lines])

    def summary(self) -> dict[str, dict[str, int]]:
        """Each dimension's counts: fixed buckets in their order (zeros kept), others most frequent first."""
        out: dict[str, dict[str, int]] = {}
        for dimension, _ in self._dimensions:
            counts = self.counters[dimension.key]
            if dimension.fixed:
                out[dimension.key] = {name: counts.get(name, 0) for name in dimension.fixed}
            else:
                out[dimension.key] = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        return out
