"""The bucket's key layout, in one place: where each file of a job lives.

    uploads/<account>/<job>.csv          a job's file (form upload, presigned upload, fetched URL)
    drop/<account>/<type>/<name>.csv     a file an operator drops in: a new job
    rejected/<account>/<type>/<name>     a drop that could not become a job
    parts/<job>/<batch>.csv              a batch's enriched rows, until the finalizer assembles them
    results/<account>/<job>.csv          the result
    results/<account>/<job>/<variant>    its variants (segments, other formats), built on demand

infra/ grants each function its prefixes; the lifecycle rules expire the staging ones.
"""

from __future__ import annotations

from functions.models import Job

UPLOADS_PREFIX = "uploads/"
DROP_PREFIX = "drop/"
REJECTED_PREFIX = "rejected/"


def upload_key(account_id: str, job_id: str) -> str:
    """Where the file of a job created through the API is stored (form upload, presigned upload or fetched URL)."""
    return f"{UPLOADS_PREFIX}{account_id}/{job_id}.csv"


def rejected_key(drop_key: str) -> str:
    """Where a drop that could not become a job is moved."""
    return REJECTED_PREFIX + drop_key.removeprefix(DROP_PREFIX)


def parts_prefix(job_id: str) -> str:
    """Where a job's part files are (deleted once the job has ended)."""
    return f"parts/{job_id}/"


def part_key(job_id: str, batch: int) -> str:
    """Where a batch's enriched rows are kept until the finalizer assembles them."""
    return f"{parts_prefix(job_id)}{batch:06d}.csv"


def result_key(job: Job) -> str:
    """Where the result CSV of a job lives."""
    return f"results/{job.account_id}/{job.id}.csv"


def variant_folder(job: Job) -> str:
    """The folder beside the result (`results/<account>/<job>.csv`) where its variants are kept."""
    return f"results/{job.account_id}/{job.id}/"


def variant_key(job: Job, name: str) -> str:
    """Where the variant `name` of a job is kept."""
    return variant_folder(job) + name
