"""The splitter cuts a file into work messages that SQS accepts, whatever the shape of the rows."""

from __future__ import annotations

import json

import pytest

from functions.adapters.messaging import MAX_MESSAGE_BYTES
from functions.errors import InputError
from functions.logic import csv_input, splitting
from functions.models import Batch

LIMITS = splitting.SplitLimits(
    rows_per_batch=1000,
    max_batch_bytes=200_000,
    max_rows=100_000,
    lease_seconds=60,
    max_message_bytes=MAX_MESSAGE_BYTES,
)


def cut(data: bytes, limits: splitting.SplitLimits = LIMITS) -> list[splitting.WorkMessage]:
    layout = csv_input.sniff(data[: csv_input.SNIFF_BYTES], "email")
    return list(splitting.batches(csv_input.iter_rows([data], layout), "job_x", layout, limits))


@pytest.mark.parametrize(
    "note",
    [
        pytest.param("lorem ipsum dolor sit amet " * 11, id="ascii-300-bytes"),
        pytest.param("日本語のメモ" * 50, id="cjk-3-bytes-a-char"),
        pytest.param('"quoted" \\ back\\slash ' * 12, id="json-escapes"),
        pytest.param("\U0001f600" * 300, id="emoji-4-bytes-a-char"),
    ],
)
def test_every_message_fits_sqs_in_bytes_and_holds_every_row_once_in_order(note: str) -> None:
    # Given 10,000 rows of an address and a long note (the 3 MB file, and harder encodings of it)
    lines = ["email,note"] + [f'user{i}@example.com,"{note.replace(chr(34), chr(34) * 2)}"' for i in range(10_000)]
    data = "\n".join(lines).encode()

    # When it is cut into messages
    messages = cut(data)

    # Then no message is over the per-message limit in UTF-8 bytes, as SQS counts
    assert all(len(m.body.encode()) <= MAX_MESSAGE_BYTES for m in messages)
    # And the body is the batch, numbered in order, with every row once in input order
    batches = [Batch.model_validate_json(m.body) for m in messages]
    assert [b.batch for b in batches] == list(range(len(batches)))
    rows = [row for b in batches for row in b.rows]
    assert [r[0] for r in rows] == [f"user{i}@example.com" for i in range(10_000)]
    assert all(b.first_row == sum(len(p.rows) for p in batches[: b.batch]) for b in batches)


def test_a_single_row_too_big_for_any_message_is_an_input_error() -> None:
    # Given a row whose JSON is over the message limit although its text is under the row limit (control
    # characters are six bytes each in JSON)
    cell = "\x01" * 30_000
    normal = "".join(f"user{i}@example.com,a,b\n" for i in range(5_000))  # the head looks like any CSV
    data = ("email,a,b\n" + normal + f"a@example.com,{cell},{cell}\n").encode()

    # When it is cut
    with pytest.raises(InputError) as caught:
        cut(data)

    # Then the job fails with a code that says so, instead of a message SQS refuses
    assert caught.value.code == "row_too_large"


def test_batch_bodies_are_the_json_the_worker_reads() -> None:
    # Given a small file
    messages = cut(b"email\na@example.com\nb@example.com\n")

    # Then each body parses back to its batch
    assert len(messages) == 1
    assert json.loads(messages[0].body)["rows"] == [["a@example.com"], ["b@example.com"]]
    assert messages[0].batch.rows == [["a@example.com"], ["b@example.com"]]
