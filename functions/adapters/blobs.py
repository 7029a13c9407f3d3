"""The bucket: uploads, drops, batch parts and results (one bucket, one prefix per purpose)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.errors import InputError, StoreError

# S3 multipart parts must be >= 5 MiB except the last; 8 MiB keeps the part count low for large results.
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
CHUNK = 256 * 1024
# Objects appended to a result are fetched this many ahead, in parallel (each at most MIN_PART_SIZE in memory).
PREFETCH = 8


class BlobStore:
    """Streaming reads and writes of objects in the project's bucket."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.s3 = client or aws_client("s3")

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None:
        """Write an object in one request."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {}
            )
        except ClientError as exc:
            raise StoreError(f"could not write {key}") from exc

    def put_new(self, key: str, body: bytes, *, content_type: str = "text/csv") -> bool:
        """Write an object unless its key already has one (S3's conditional write); False when it has."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            # 412: the key has an object; 409: a concurrent conditional write of the same key won.
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise StoreError(f"could not write {key}") from exc
        return True

    def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            raise StoreError(f"could not read {key}") from exc

    def get_if_small(self, key: str, max_bytes: int) -> tuple[int, bytes | None] | None:
        """An object's size, and its bytes when it has at most `max_bytes` (a larger one is not read), in one GET;
        None when it does not exist."""
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"could not read {key}") from exc
        size, body = int(resp["ContentLength"]), resp["Body"]
        try:
            return size, (bytes(body.read()) if size <= max_bytes else None)
        finally:
            body.close()

    def get_if_exists(self, key: str) -> bytes | None:
        """Read a whole (small) object, or None when it does not exist."""
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"could not read {key}") from exc

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when it does not exist."""
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"could not read {key}") from exc

    def stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks, never all in memory."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            raise StoreError(f"could not read {key}") from exc
        yield from body.iter_chunks(CHUNK)

    def open(self, key: str, if_match: str | None = None) -> OpenedObject:
        """The object's size, ETag and a stream of its bytes; with `if_match`, only that version (an object
        replaced since is the InputError `upload_changed`)."""
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise InputError(
                    "the file was replaced while it was being read; send it again", code="upload_changed"
                ) from exc
            raise StoreError(f"could not read {key}") from exc
        size = resp.get("ContentLength")
        return OpenedObject(int(size) if size is not None else None, resp.get("ETag"), resp["Body"].iter_chunks(CHUNK))

    def read_range(self, key: str, start: int, length: int, if_match: str | None = None) -> bytes:
        """`length` bytes of the object from `start` (fewer at its end): random access to an archive's directory;
        with `if_match`, only that version (else the InputError `upload_changed`)."""
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}", **extra)
            return bytes(resp["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise InputError(
                    "the file was replaced while it was being read; send it again", code="upload_changed"
                ) from exc
            if code in ("InvalidRange", "416"):
                return b""
            raise StoreError(f"could not read {key}") from exc

    def copy(self, source_key: str, dest_key: str) -> None:
        """Server-side copy within the bucket."""
        self.s3.copy_object(Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": source_key})

    def delete(self, key: str) -> None:
        """Delete an object (no error if it is already gone)."""
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def purge(self, prefix: str, *, exact: bool = False) -> int:
        """Delete every version (and delete marker) of the objects under `prefix`, or of the key itself if `exact`.

        The bucket is versioned: a plain delete would only hide the data behind a delete marker for a week.
        Returns how many versions were deleted.
        """
        paginator = self.s3.get_paginator("list_object_versions")
        deleted = 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                versions = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if not exact or v["Key"] == prefix
                ]
                # DeleteObjects takes up to 1,000 keys, as many as a page lists.
                if versions:
                    resp = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": versions, "Quiet": True})
                    if resp.get("Errors"):
                        raise StoreError(f"could not delete {resp['Errors'][0].get('Key')}")
                    deleted += len(versions)
        except ClientError as exc:
            raise StoreError(f"could not delete {prefix}") from exc
        return deleted

    def presigned_get(self, key: str, expires: int, disposition: str) -> str:
        """A time-limited download URL whose answer carries `disposition` (the file's name for the browser)."""
        # Signature Version 4 explicitly, as for the upload form: a client without it presigns with SigV2 (even when
        # it signs its own calls with SigV4), which buckets created since 2020 refuse; so does the local emulation.
        return str(
            aws_client("s3", "s3v4").generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": disposition},
                ExpiresIn=expires,
            )
        )

    def presigned_post(self, key: str, *, max_bytes: int, expires_in: int) -> tuple[str, dict[str, str]]:
        """A browser-style POST upload of exactly `key`: the URL and the form fields, signed (SigV4) so that S3 itself
        refuses a file over `max_bytes`, an empty one, or a form used after `expires_in` seconds."""
        # Signature Version 4 explicitly: buckets created since 2020 refuse the older signature botocore may still
        # pick for a presigned POST.
        post = aws_client("s3", "s3v4").generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        return str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()}

    def writer(self, key: str, content_type: str = "text/csv") -> StreamingWriter:
        """A writer that uploads in one put when small, as a multipart upload when large."""
        return StreamingWriter(self, key, content_type)


@dataclass
class OpenedObject:
    """An object being read: its size, its version (ETag) and its bytes, a chunk at a time."""

    size: int | None
    etag: str | None
    chunks: Iterator[bytes]

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


@dataclass
class _Fetched:
    key: str
    size: int
    data: bytes | None  # None: large enough to be copied by S3 itself


class StreamingWriter:
    """Buffers up to PART_SIZE; switches to a multipart upload only when the object outgrows one part.

    `append_objects` builds the object from other objects of the bucket: those of at least MIN_PART_SIZE become parts
    by UploadPartCopy (S3 copies them; their bytes never pass through here), smaller ones are streamed through the
    buffer, fetched a few ahead in parallel. Memory stays at the buffer plus the prefetched objects, whatever the size.
    """

    def __init__(self, store: BlobStore, key: str, content_type: str) -> None:
        self.store, self.key, self.content_type = store, key, content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.size = 0
        self.copied_parts = 0

    def write(self, data: bytes) -> None:
        """Append bytes."""
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= PART_SIZE:
            self._flush_part()

    def append_objects(
        self,
        keys: Iterable[str],
        observe: Callable[[str, bytes | None], None] | None = None,
        prefetch: int = PREFETCH,
    ) -> None:
        """Append the objects at `keys`, in order; `observe` sees each one's key and bytes as it is appended (None for
        an object S3 copies, whose bytes never come here)."""
        pending: deque[Future[_Fetched]] = deque()
        remaining = iter(keys)
        with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="append") as pool:
            for key in remaining:
                pending.append(pool.submit(self._fetch, key))
                if len(pending) >= prefetch:
                    self._append(pending.popleft().result(), observe)
            while pending:
                self._append(pending.popleft().result(), observe)

    def _fetch(self, key: str) -> _Fetched:
        try:
            resp = self.store.s3.get_object(Bucket=self.store.bucket, Key=key)
        except ClientError as exc:
            raise StoreError(f"could not read {key}") from exc
        size = int(resp["ContentLength"])
        if size >= MIN_PART_SIZE:
            resp["Body"].close()
            return _Fetched(key, size, None)
        return _Fetched(key, size, resp["Body"].read())

    def _append(self, fetched: _Fetched, observe: Callable[[str, bytes | None], None] | None) -> None:
        if observe is not None:
            observe(fetched.key, fetched.data)
        if fetched.data is not None:
            self.write(fetched.data)
            return
        # A large object: top the buffer up to a whole part from its head, then let S3 copy the rest.
        offset = 0
        if self.buffer:
            offset = min(fetched.size, max(0, MIN_PART_SIZE - len(self.buffer)))
            if offset:
                self.write(self._range(fetched.key, 0, offset))
            if self.buffer:
                self._flush_part()
        rest = fetched.size - offset
        if rest >= MIN_PART_SIZE:
            self._copy_part(fetched.key, offset, fetched.size - 1)
        elif rest:
            self.write(self._range(fetched.key, offset, fetched.size))

    def _range(self, key: str, start: int, end: int) -> bytes:
        resp = self.store.s3.get_object(Bucket=self.store.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        return bytes(resp["Body"].read())

    def _start(self) -> str:
        if self.upload_id is None:
            self.upload_id = self.store.s3.create_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, ContentType=self.content_type
            )["UploadId"]
        return self.upload_id

    def _copy_part(self, source_key: str, first: int, last: int) -> None:
        upload_id = self._start()
        number = len(self.parts) + 1
        resp = self.store.s3.upload_part_copy(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.store.bucket, "Key": source_key},
            CopySourceRange=f"bytes={first}-{last}",
        )
        self.parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
        self.size += last - first + 1
        self.copied_parts += 1

    def _flush_part(self) -> None:
        upload_id = self._start()
        number = len(self.parts) + 1
        resp = self.store.s3.upload_part(
            Bucket=self.store.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=bytes(self.buffer)
        )
        self.parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        self.buffer.clear()

    def close(self) -> None:
        """Finish the object."""
        if self.upload_id is None:
            self.store.put(self.key, bytes(self.buffer), content_type=self.content_type)
            return
        if self.buffer:
            self._flush_part()
        self.store.s3.complete_multipart_upload(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        """Drop a multipart upload that will not be completed."""
        if self.upload_id is not None:
            self.store.s3.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)
