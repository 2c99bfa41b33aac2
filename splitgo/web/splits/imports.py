"""A Splitwise CSV export imported into a group, and the group exported as JSON (issue 17,
item 7).

The import goes in two steps, as the splits actor takes it (`ImportSplitwise`):

1. `POST /api/v1/groups/{id}/import/splitwise` with the file (the CSV as the body, or a
   multipart form with a `file` part): the dry run — the report and a proposed mapping of
   each Splitwise name to a member or a new placeholder. `POST /api/v1/imports/splitwise`
   does the same for a new group it creates from the file (the group's id is derived from
   the caller and the file, so sending it again finds the same group).
2. `POST /api/v1/groups/{id}/import/splitwise/confirm` with `{file_sha256, mapping}`: the
   import runs as a job, chunk after chunk (one ask each), and `GET /api/v1/imports/{job}`
   says how far it is (`done` of `total`) and, once finished, what it added.

The file of a dry run is held by this node (`ImportJobs`, in memory, for an hour, at most
`HELD_BYTES` in all) so that the confirm need not send it again; the jobs are kept in the
same registry. Both are per node: behind a load balancer a confirm must reach the node of
its dry run (or the dry run is sent again), and a job's status is asked of its node.
A file over 20 MiB is refused with 413 before the actor is asked; a file in another shape
with 422 `invalid_import` naming the row and column; nothing is stored either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog
from aiohttp import BodyPartReader, web

from actors.runtime import ActorRef, DomainError
from actors.splits.messages import (
    MAX_FILE_BYTES,
    CreateGroup,
    ExportGroupJson,
    GroupExport,
    GroupView,
    ImportDryRun,
    ImportMatch,
    ImportProgress,
    ImportSplitwise,
    import_group_id,
    main_currency,
    read_report,
)
from splitgo.web.actors import actor
from splitgo.web.declare import Content, Raw, documented, idempotency, streamed
from splitgo.web.idempotency import HEADER as IDEMPOTENCY_HEADER
from splitgo.web.problems import (
    FieldError,
    ProblemError,
    json_response,
    matching,
    to_json,
)
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id, json_path_problem
from splitgo.web.splits.history import attachment

log = structlog.get_logger("splitgo.imports")

routes = web.RouteTableDef()
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[web.StreamResponse]])

HELD_SECONDS = 3600.0  # a dry run's file is kept this long for its confirm
HELD_BYTES = 256 * 1024 * 1024  # files held by one node at most (the oldest go first)
JOBS_KEPT = 200  # finished jobs remembered per node (the oldest go first)
CHUNK_ROWS = 1_000  # rows per ask: one transaction of the splits shard
CHUNK_TIMEOUT = 60.0  # seconds one chunk may take
NEW_GROUP_NAME = "Splitwise import"
CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv", "application/octet-stream"})

UPLOAD_DOC = (
    "The Splitwise group export: the CSV as the body (`text/csv`), or a `multipart/form-data`"
    f" form whose `file` part is the CSV. At most {MAX_FILE_BYTES // 2**20} MiB (413 past"
    " that); a file in another shape is a 422 `invalid_import` whose error names the row"
    " and column at fault. Nothing is stored."
)


# ── bodies and replies ─────────────────────────────────────────────────────────────────


class MatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """A Splitwise name and the member it becomes (`user_id` null: a new placeholder)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class ConfirmBody(msgspec.Struct, forbid_unknown_fields=True):
    """The dry run's `report.file_sha256` and the mapping confirmed (every name)."""

    file_sha256: Annotated[
        str,
        matching(
            "^[0-9a-f]{64}$",
            "the dry run's file_sha256: 64 lower-case hexadecimal digits",
            description="the dry run's file_sha256",
        ),
    ]
    mapping: Annotated[list[MatchBody], msgspec.Meta(max_length=200)]


class ImportJobView(msgspec.Struct, kw_only=True):
    """An import running on this node: `done` of `total` rows written; `result` once
    finished, `error` (a problem) when it failed."""

    id: str
    group_id: str
    state: Literal["running", "finished", "failed"]
    done: int
    total: int
    result: ImportProgress | None = None
    error: dict[str, Any] | None = None


class NewGroupImport(msgspec.Struct, kw_only=True):
    """The group made for the file, and the dry run of the file into it."""

    group: GroupView
    dry_run: ImportDryRun


# ── the node's held files and jobs ─────────────────────────────────────────────────────


@dataclass
class ImportJob:
    """One confirmed import being written, chunk by chunk."""

    id: str
    user_id: str
    group_id: str
    done: int = 0
    total: int = 0
    state: Literal["running", "finished", "failed"] = "running"
    result: ImportProgress | None = None
    error: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def view(self) -> ImportJobView:
        return ImportJobView(
            id=self.id,
            group_id=self.group_id,
            state=self.state,
            done=self.done,
            total=self.total,
            result=self.result,
            error=self.error,
        )


class ImportJobs:
    """The files of dry runs held for their confirm, and the import jobs, of one node."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._held: OrderedDict[tuple[str, str, str], tuple[float, bytes]] = OrderedDict()
        self._held_bytes = 0
        self.jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._by_key: dict[tuple[str, str, str], str] = {}

    def hold(self, user_id: str, group: str, data: bytes) -> str:
        """Keep the file for its confirm; its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        key = (user_id, group, digest)
        self._drop(key)
        self._held[key] = (self._clock(), data)
        self._held_bytes += len(data)
        self._expire()
        return digest

    def held(self, user_id: str, group: str, digest: str) -> bytes | None:
        self._expire()
        found = self._held.get((user_id, group, digest))
        return None if found is None else found[1]

    def _drop(self, key: tuple[str, str, str]) -> None:
        found = self._held.pop(key, None)
        if found is not None:
            self._held_bytes -= len(found[1])

    def _expire(self) -> None:
        now = self._clock()
        while self._held:
            key, (at, _data) = next(iter(self._held.items()))
            if now - at < HELD_SECONDS and self._held_bytes <= HELD_BYTES:
                break
            self._drop(key)

    def job_for(self, key: tuple[str, str, str] | None) -> ImportJob | None:
        """The job an Idempotency-Key started before (a retry of the same confirm)."""
        job_id = self._by_key.get(key) if key is not None else None
        return None if job_id is None else self.jobs.get(job_id)

    def add(self, job: ImportJob, key: tuple[str, str, str] | None) -> None:
        self.jobs[job.id] = job
        if key is not None:
            self._by_key[key] = job.id
        while len(self.jobs) > JOBS_KEPT:
            oldest = next(iter(self.jobs.values()))
            if oldest.state == "running":
                break
            self.jobs.pop(oldest.id)
            self._by_key = {k: v for k, v in self._by_key.items() if v != oldest.id}


_REGISTRIES: weakref.WeakKeyDictionary[web.Application, ImportJobs] = weakref.WeakKeyDictionary()


def import_jobs(request: web.Request) -> ImportJobs:
    """This node's registry (one per application)."""
    registry = _REGISTRIES.get(request.app)
    if registry is None:
        registry = _REGISTRIES[request.app] = ImportJobs()
    return registry


# ── reading the upload ─────────────────────────────────────────────────────────────────


def too_large() -> ProblemError:
    limit = f"{MAX_FILE_BYTES // 2**20} MiB"
    return ProblemError(
        413,
        "payload_too_large",
        f"the file is larger than the limit of {limit}; export a shorter period",
        errors=[FieldError(field="$.file", message=f"at most {limit}")],
    )


def no_file(detail: str) -> ProblemError:
    return ProblemError(422, "invalid_import", detail, errors=[FieldError("$.file", detail)])


async def _read_limited(stream: Any) -> bytes:
    """Every byte of `stream` (a body or a multipart part), 413 past MAX_FILE_BYTES."""
    read = stream.read_chunk if isinstance(stream, BodyPartReader) else stream.read
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await read(256 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Upload:
    """A file as posted, and the text fields beside it (a multipart form's)."""

    data: bytes
    fields: dict[str, str]


async def read_upload(request: web.Request, *, file_field: str = "file") -> Upload:
    """The CSV of the request: its body, or the `file_field` part of a multipart form
    (other parts read as text fields, at most 64 KiB each). 413 past MAX_FILE_BYTES,
    checked on Content-Length first; the app's 1 MiB body limit does not apply here."""
    if request.content_length is not None and request.content_length > MAX_FILE_BYTES + 65_536:
        raise too_large()
    if request.content_type == "multipart/form-data":
        data: bytes | None = None
        fields: dict[str, str] = {}
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: not ours
            if part.name == file_field:
                data = await _read_limited(part)
            elif part.name and len(fields) < 50:
                raw = await part.read_chunk(65_536)
                fields.setdefault(part.name, raw.decode("utf-8", "replace"))
        if data is None:
            raise no_file(f"the form has no `{file_field}` part holding the CSV")
        return Upload(data=data, fields=fields)
    if request.content_type not in CSV_TYPES:
        raise ProblemError(
            415,
            "unsupported_media_type",
            "send the CSV as text/csv, or as the `file` part of multipart/form-data",
        )
    return Upload(data=await _read_limited(request.content), fields={})


# ── the job ────────────────────────────────────────────────────────────────────────────


def _problem_of(error: Exception) -> dict[str, Any]:
    if isinstance(error, DomainError):
        problem = json_path_problem(error)
        if problem is None:
            return {"code": error.code, "detail": error.message, "errors": []}
        error = problem
    if isinstance(error, ProblemError):
        return {
            "code": error.code,
            "detail": error.detail,
            "errors": [msgspec.to_builtins(found) for found in error.errors],
        }
    return {"code": "internal_error", "detail": "the import stopped on our side; run it again"}


async def run_job(splits: ActorRef, job: ImportJob, first: ImportSplitwise) -> None:
    """Ask the splits actor chunk after chunk from where `first` starts, until finished."""
    message = first
    try:
        while True:
            progress: ImportProgress = await splits.ask(message, timeout=CHUNK_TIMEOUT)
            job.done, job.total = progress.done, progress.total
            if progress.finished:
                job.result, job.state = progress, "finished"
                return
            message = msgspec.structs.replace(
                message,
                start=progress.done,
                expenses_added=progress.expenses_added,
                settlements_added=progress.settlements_added,
                placeholders_added=progress.placeholders_added,
            )
    except asyncio.CancelledError:
        job.state, job.error = "failed", {"code": "stopped", "detail": "the node stopped"}
        raise
    except Exception as error:  # the job says it failed; a retry of the confirm resumes
        log.warning("import_job_failed", job_id=job.id, error=repr(error))
        job.state, job.error = "failed", _problem_of(error)


async def start_import(
    request: web.Request,
    user_id: str,
    group: str,
    body: ConfirmBody,
    *,
    key: str | None,
) -> ImportJob:
    """Start (or find, for a retry with the same key) the job of a confirmed import; its
    first chunk runs before this returns, so a mapping the actor refuses is the caller's
    refusal (422 naming the name), not a failed job."""
    jobs = import_jobs(request)
    scope = (user_id, group, key) if key is not None else None
    known = jobs.job_for(scope)
    if known is not None and known.state != "failed":
        return known
    data = jobs.held(user_id, group, body.file_sha256)
    if data is None:
        raise ProblemError(
            409,
            "import_file_missing",
            "this node holds no file of that SHA-256 for this group (it is kept an hour after"
            " its dry run): send the file to the dry run again, then confirm",
            errors=[FieldError(field="$.file_sha256", message="run the dry run again")],
        )
    first = ImportSplitwise(
        group_id=group,
        user_id=user_id,
        data=data,
        mapping=[ImportMatch(name=m.name, user_id=m.user_id) for m in body.mapping],
        file_sha256=body.file_sha256,
        chunk=CHUNK_ROWS,
    )
    progress: ImportProgress = await ask_splits(request, first, timeout=CHUNK_TIMEOUT)
    job = ImportJob(
        id=str(uuid.uuid4()),
        user_id=user_id,
        group_id=group,
        done=progress.done,
        total=progress.total,
    )
    jobs.add(job, scope)
    if progress.finished:
        job.result, job.state = progress, "finished"
        return job
    rest = msgspec.structs.replace(
        first,
        start=progress.done,
        expenses_added=progress.expenses_added,
        settlements_added=progress.settlements_added,
        placeholders_added=progress.placeholders_added,
    )
    job.task = asyncio.get_running_loop().create_task(
        run_job(actor(request, "splits"), job, rest), name=f"import:{job.id}"
    )
    return job


def find_job(request: web.Request, user_id: str, job_id: str) -> ImportJob:
    job = import_jobs(request).jobs.get(job_id)
    if job is None or job.user_id != user_id:
        raise ProblemError(404, "import_not_found", "no such import on this node among yours")
    return job


async def dry_run(request: web.Request, user_id: str, group: str, data: bytes) -> ImportDryRun:
    """Ask the actor for the dry run and hold the file for its confirm."""
    result: ImportDryRun = await ask_splits(
        request,
        ImportSplitwise(group_id=group, user_id=user_id, data=data),
        timeout=CHUNK_TIMEOUT,
    )
    import_jobs(request).hold(user_id, group, data)
    return result


async def new_group_for(
    request: web.Request, user_id: str, data: bytes, name: str | None, currency: str | None
) -> GroupView:
    """The group made for this file by this user (the same one on a retry): the file is
    read first, so a file in another shape creates nothing."""
    try:
        report = await asyncio.to_thread(read_report, data)
    except DomainError as error:
        raise json_path_problem(error) or error from None
    chosen = (currency or "").strip().upper() or main_currency(report) or "EUR"
    group: GroupView = await ask_splits(
        request,
        CreateGroup(
            group_id=import_group_id(user_id, data),
            user_id=user_id,
            name=(name or "").strip()[:100] or NEW_GROUP_NAME,
            currency=chosen,
        ),
    )
    return group


# ── routes ─────────────────────────────────────────────────────────────────────────────


def _upload_route(**options: Any) -> Callable[[Handler], Handler]:
    """Declare a route that reads the CSV itself (read_upload: past the app's 1 MiB body
    limit, up to MAX_FILE_BYTES), documented as a text/csv body."""
    return streamed(
        body=Raw({"type": "string", "description": "a Splitwise group export (CSV)"}),
        body_media_type="text/csv",
        tags=["splits"],
        **options,
    )


@routes.post("/api/v1/groups/{id}/import/splitwise")
@_upload_route(
    summary="Dry run of a Splitwise import into the group",
    description=UPLOAD_DOC
    + " The reply is the report (rows read, expenses, payments, skipped rows, totals and"
    " each person's net per currency; `already_imported` counts rows the group holds from"
    " an earlier run) and a proposed `mapping` of every Splitwise name to a member"
    " (`user_id`) or to a new placeholder (null). The file is held by this node for an hour"
    " for its confirm.",
    responses={200: ImportDryRun},
    errors=[409],  # group_archived
)
async def import_dry_run(request: web.Request) -> web.Response:
    claims = authenticate(request)
    upload = await read_upload(request)
    result = await dry_run(request, claims.sub, group_id(request), upload.data)
    return json_response(to_json(result))


@routes.post("/api/v1/groups/{id}/import/splitwise/confirm")
@documented(
    summary="Confirm a Splitwise import: run it as a job",
    description="`file_sha256` is the dry run's, `mapping` every name of the file to a member"
    " or null (a new placeholder). The first chunk is written before the reply (a mapping"
    " refused is a 422 naming the name); the rest runs as a job on this node, whose"
    " `GET /api/v1/imports/{job}` says `done` of `total`. Running the same file again adds"
    " nothing. 409 `import_file_missing` when this node holds no such file (dry-run it"
    " again).",
    tags=["splits"],
    body=ConfirmBody,
    headers=[idempotency(required=False)],
    responses={
        202: Content(
            ImportJobView, headers={"Location": ("where the job's progress is read", True)}
        )
    },
    errors=[409],
)
async def import_confirm(request: web.Request, body: ConfirmBody) -> web.Response:
    claims = authenticate(request)
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
    job = await start_import(request, claims.sub, group_id(request), body, key=key)
    response = json_response(to_json(job.view()), status=202)
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    return response


@routes.get("/api/v1/imports/{job_id}")
@documented(
    summary="How far an import is",
    description="`done` of `total` rows; `result` (what it added) once `finished`, `error`"
    " when it `failed` (confirm again to resume: what was written stays, once).",
    tags=["splits"],
    responses={200: ImportJobView},
    actor=False,
)
async def import_status(request: web.Request) -> web.Response:
    claims = authenticate(request)
    job = find_job(request, claims.sub, request.match_info["job_id"])
    return json_response(to_json(job.view()))


@routes.post("/api/v1/imports/splitwise")
@_upload_route(
    summary="Dry run of a Splitwise import into a new group",
    description=UPLOAD_DOC
    + " Creates the group first (as a multipart form: optional `name` and `currency`"
    " parts; by default the file's main currency), whose id is derived from the caller"
    " and the file: sending the same file again finds the same group. Confirm with"
    " `POST /api/v1/groups/{id}/import/splitwise/confirm`.",
    responses={201: NewGroupImport},
)
async def import_new_group(request: web.Request) -> web.Response:
    claims = authenticate(request)
    upload = await read_upload(request)
    name = upload.fields.get("name") or request.query.get("name")
    currency = upload.fields.get("currency") or request.query.get("currency")
    group = await new_group_for(request, claims.sub, upload.data, name, currency)
    result = await dry_run(request, claims.sub, group.id, upload.data)
    return json_response(to_json(NewGroupImport(group=group, dry_run=result)), status=201)


@routes.get("/api/v1/groups/{id}/export.json")
@documented(
    summary="The whole group as JSON",
    description="The group, its members (placeholders marked), every live expense with who"
    " paid, each share and its comments, and every completed settlement; amounts in minor"
    " units, names beside ids.",
    tags=["splits"],
    responses={
        200: Content(
            GroupExport,
            headers={"Content-Disposition": ("attachment; filename=...", True)},
        )
    },
)
async def export_json(request: web.Request) -> web.Response:
    claims = authenticate(request)
    export: GroupExport = await ask_splits(
        request, ExportGroupJson(group_id=group_id(request), user_id=claims.sub)
    )
    response = json_response(to_json(export))
    safe = "".join(c if c.isalnum() else "-" for c in export.group.name).strip("-") or "group"
    response.headers["Content-Disposition"] = attachment(f"{safe}.json")
    return response


async def stop_jobs(app: web.Application) -> None:
    """Cancel this node's running imports (what they wrote stays; a confirm resumes)."""
    registry = _REGISTRIES.get(app)
    if registry is None:
        return
    for job in registry.jobs.values():
        if job.task is not None and not job.task.done():
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task
