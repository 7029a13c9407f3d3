"""README's enrichment tables document exactly the columns each type writes, in the order it writes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from functions.enrich import result_columns
from functions.enrich.google import MAX_RESULTS

README = Path(__file__).resolve().parent.parent / "README.md"
TYPES = ("email", "phone", "domain", "ip", "company", "darkweb", "google")


def documented_columns(job_type: str) -> list[str]:
    """The column names of a type's table: the first cell of each row, several names per cell allowed."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n**{job_type}**")
    table = text[start:].split("\n\n", 2)[1]
    names: list[str] = []
    for line in table.splitlines()[2:]:
        first_cell = line.split("|")[1]
        for name in re.findall(r"`([a-z0-9_N]+)`", first_cell):
            if "_N_" in name:
                names += [name.replace("_N_", f"_{i}_") for i in range(1, MAX_RESULTS + 1)]
            else:
                names.append(name)
    return names


@pytest.mark.parametrize("job_type", TYPES)
def test_every_column_is_documented_in_order(job_type: str) -> None:
    documented = documented_columns(job_type)
    expected = list(result_columns(job_type))
    if job_type == "google":
        # result_N_title, result_N_url, result_N_snippet expand per field; the columns group per result
        assert sorted(documented) == sorted(expected)
    else:
        assert documented == expected
