"""The bucket: uploads, drops, batch parts and results (one bucket, one prefix per purpose)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.errors import StoreError

# S3 multipart parts must be >= 5 MiB except the last; 8 MiB keeps the part count low for large results.
PART_SIZE = 8 * 1024 * 1024
CHUNK = 256 * 1024


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

    def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            raise StoreError(f"could not read {key}") from exc

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
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": disposition},
                ExpiresIn=expires,
            )
        )

    def writer(self, key: str, content_type: str = "text/csv") -> StreamingWriter:
        """A writer that uploads in one put when small, as a multipart upload when large."""
        return StreamingWriter(self, key, content_type)


class StreamingWriter:
    """Buffers up to PART_SIZE; switches to a multipart upload only when the object outgrows one part."""

    def __init__(self, store: BlobStore, key: str, content_type: str) -> None:
        self.store, self.key, self.content_type = store, key, content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append bytes."""
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= PART_SIZE:
            self._flush_part()

    def _flush_part(self) -> None:
        s3 = self.store.s3
        if self.upload_id is None:
            self.upload_id = s3.create_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, ContentType=self.content_type
            )["UploadId"]
        number = len(self.parts) + 1
        resp = s3.upload_part(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=bytes(self.buffer)
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
