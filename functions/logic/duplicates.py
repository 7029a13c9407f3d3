"""The splitter's memory of a job's values: which row first had each normalized value, in a compact hash table.

A 1,000,000-row job must be deduplicated within the splitter's memory (<= 150 MB in all). Python's dict or set would
take about 100 bytes a value; this table takes 12 bytes a slot (an 8-byte BLAKE2b digest of the normalized value in
an `array('Q')` and the value's number in an `array('I')`, open addressing with linear probing, at most half full)
plus, per distinct value, its first row (4 bytes), where its text starts (8 bytes) and the text itself (UTF-8 in one
`bytearray`): the text is what a worker enriches for a duplicate whose first occurrence is in another batch. Two
different values share a digest with a probability of about n^2 / 2^65 (1e-8 for a million values); such a row would
be taken for a duplicate.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from typing import NamedTuple

from functions.enrich import countries
from functions.enrich.duplicates import key_of


class FirstSeen(NamedTuple):
    """The first occurrence of a value: its 0-based data row and the value to enrich for its duplicates."""

    row: int
    value: str


class Duplicates:
    """Remembers the first row of each normalized value; sized for `expected` values (it grows if need be)."""

    def __init__(self, expected: int) -> None:
        self._capacity = 16
        while self._capacity < 2 * max(1, expected):
            self._capacity *= 2
        self._digests = array("Q", bytes(8 * self._capacity))
        self._slots = array("I", bytes(4 * self._capacity))  # 1 + the distinct value's number; 0: empty slot
        self._first_rows = array("I")
        self._starts = array("Q", [0])
        self._texts = bytearray()
        self.duplicates = 0

    @property
    def distinct(self) -> int:
        """How many distinct values were seen."""
        return len(self._first_rows)

    def nbytes(self) -> int:
        """The memory the table holds, in bytes (without Python's small object headers)."""
        arrays = (self._digests, self._slots, self._first_rows, self._starts)
        return sum(a.itemsize * len(a) for a in arrays) + len(self._texts)

    def see(self, key: str, row: int, value: str) -> FirstSeen | None:
        """None the first time `key` is seen (remembering `row` and `value`), else its first occurrence."""
        digest = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little") or 1
        mask = self._capacity - 1
        slot = digest & mask
        while True:
            number = self._slots[slot]
            if number == 0:
                break
            if self._digests[slot] == digest:
                self.duplicates += 1
                index = number - 1
                text = self._texts[self._starts[index] : self._starts[index + 1]].decode("utf-8")
                return FirstSeen(self._first_rows[index], text)
            slot = (slot + 1) & mask
        self._digests[slot] = digest
        self._first_rows.append(row)
        self._texts += value.encode("utf-8")
        self._starts.append(len(self._texts))
        self._slots[slot] = len(self._first_rows)
        if 2 * len(self._first_rows) > self._capacity:
            self._grow()
        return None

    def _grow(self) -> None:
        old = [(d, n) for d, n in zip(self._digests, self._slots, strict=True) if n]
        self._capacity *= 2
        self._digests = array("Q", bytes(8 * self._capacity))
        self._slots = array("I", bytes(4 * self._capacity))
        mask = self._capacity - 1
        for digest, number in old:
            slot = digest & mask
            while self._slots[slot]:
                slot = (slot + 1) & mask
            self._digests[slot] = digest
            self._slots[slot] = number


class JobValues:
    """A job's values as the splitter reads them: the first row of each normalized value, and whether a row repeats
    one. A phone row is normalized in its own region (its country column), else the job's, else the deployment's."""

    def __init__(
        self,
        job_type: str,
        header: Sequence[str],
        column_index: int,
        *,
        expected: int,
        country: str | None = None,
        country_column: str | None = None,
        default_region: str = "US",
    ) -> None:
        self.type = job_type
        self.column = column_index
        self.region = country or default_region
        self.country_index = (
            countries.country_column(list(header), country_column, column_index) if job_type == "phone" else None
        )
        self.seen = Duplicates(expected)

    def first_of(self, index: int, row: Sequence[str]) -> FirstSeen | None:
        """The first occurrence of this row's value (None: the row is the first, or has no normalized value)."""
        raw = row[self.column] if self.column < len(row) else ""
        region = self.region
        if self.country_index is not None and self.country_index < len(row):
            region = countries.region_of(row[self.country_index]) or region
        key = key_of(self.type, raw, region)
        return None if key is None else self.seen.see(key[0], index, key[1])
