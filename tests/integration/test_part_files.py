"""A worker that did not read the job first writes its part file only where none is (S3's conditional write)."""

from __future__ import annotations

import secrets

from functions.adapters.blobs import BlobStore
from local.runtime import LocalRuntime


def test_a_part_is_written_where_none_is_and_an_existing_one_is_kept(runtime: LocalRuntime) -> None:
    # Given a part key with nothing under it (in the versioned bucket)
    blobs = BlobStore(runtime.bucket)
    key = f"parts/job_{secrets.token_hex(4)}/000000.csv"
    # When a part is written there only if new, twice
    first = blobs.put_new(key, b"counted\r\n")
    second = blobs.put_new(key, b"redelivered\r\n")
    # Then the first write took, the second was refused, and the object is the first one
    assert (first, second) == (True, False)
    assert blobs.get(key) == b"counted\r\n"
