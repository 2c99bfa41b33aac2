"""The storage port: where the files actor keeps the bytes of attachments.

`Storage` is what the actor needs: put, get and delete an object by key. Two adapters:

- `LocalFolderStorage(root)` (the default): one file per key under a folder, written to a
  temporary name, flushed to disk and then renamed, so a crash never leaves half a file;
- `S3Storage(...)`: an S3-compatible store (AWS S3, MinIO, Ceph, R2, moto…) over its REST
  API with AWS Signature Version 4, path-style (`{endpoint}/{bucket}/{key}`), over the
  node's aiohttp session. Idempotent requests are retried on a 5xx or a lost connection.

Keys are made by the actor (`object_key`): random, of lower-case letters, digits and `/`,
so no uploaded name or id ever becomes a path. Both adapters refuse any other key.
Failures are `StorageUnavailable`, naming the store and the status, never a credential.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from yarl import URL

from actors.files.messages import MAX_STORED_BYTES, StorageUnavailable
from actors.runtime import Backoff

log = structlog.get_logger("actors.files.storage")

T = TypeVar("T")

_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*")
KEY_MAX = 512
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# S3: attempts of one request, and the wait between them (a 5xx, a reset connection)
ATTEMPTS = 3
RETRY = Backoff(initial=0.2, maximum=2.0, jitter=0.5)
# a slow store or a big file: generous, but a dead store must not hold a shard for long
HTTP_TIMEOUT_SECONDS = 60.0
_WRITE_ATTEMPTS = 3  # a local write whose folder a concurrent delete removed is tried again
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_ERROR_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")


class ObjectMissing(Exception):
    """No object is stored under that key."""


class Storage(Protocol):
    """Where attachment bytes live, by key."""

    @property
    def name(self) -> str:
        """What the store is, for logs and errors ("local", "s3")."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing what was there; StorageUnavailable on failure."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; ObjectMissing when there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under `key`; nothing there is fine (a retried delete)."""
        ...


def object_key(variant: Literal["original", "thumbnail"], token: str | None = None) -> str:
    """A new key: `attachments/<2 hex>/<32 hex>/<variant>` (random: it says nothing of
    the group or the file, and the first two characters spread objects over folders)."""
    token = token or uuid.uuid4().hex
    return f"attachments/{token[:2]}/{token}/{variant}"


def check_key(key: str) -> str:
    """`key` when it is one `object_key` could make: ValueError for anything that could
    climb out of a folder or need escaping."""
    if len(key) > KEY_MAX or _KEY.fullmatch(key) is None:
        raise ValueError("a storage key is lower-case letters, digits, '_', '.', '-' and '/'")
    return key


# ── a local folder ─────────────────────────────────────────────────────────────────────


class LocalFolderStorage:
    """Objects as files under `root` (created on first use), one file per key."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def __repr__(self) -> str:
        return f"LocalFolderStorage({str(self._root)!r})"

    @property
    def name(self) -> str:
        return "local"

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, key: str) -> Path:
        """Where `key` lives on disk."""
        return self._root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_of(key)
        await self._io(_write_file, path, data)

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await self._io(path.read_bytes)
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await self._io(_remove_file, path, self._root)

    async def _io(self, work: Callable[..., T], *args: object) -> T:
        """`work` on a thread (file IO blocks); a failure is StorageUnavailable, but for a
        missing file, which the caller decides about."""
        try:
            return await asyncio.to_thread(work, *args)
        except FileNotFoundError:
            raise
        except OSError as error:
            log.error("storage_failed", store="local", error=type(error).__name__)
            raise StorageUnavailable(
                # the reason in words, never the path (it would reach the client)
                f"the local file store failed: {error.strerror or type(error).__name__}",
                details={"store": "local"},
            ) from None


def _write_file(path: Path, data: bytes) -> None:
    """Write to a temporary name beside `path`, flush to disk, rename: all or nothing."""
    for attempt in range(_WRITE_ATTEMPTS):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            with temporary.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
            return
        except FileNotFoundError:
            # a delete beside it removed the folder it had just made (empty folders go
            # with their last file): make it again
            temporary.unlink(missing_ok=True)
            if attempt + 1 == _WRITE_ATTEMPTS:
                raise FolderVanished(errno.EAGAIN, "its folder kept disappearing") from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


class FolderVanished(OSError):
    """A local write whose folder kept being removed under it (not a missing file)."""


def _remove_file(path: Path, root: Path) -> None:
    path.unlink(missing_ok=True)
    # the key's now empty folders go too (up to the root), so deleted files leave nothing
    folder = path.parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another object), or gone already
            return
        folder = folder.parent


# ── S3 ─────────────────────────────────────────────────────────────────────────────────


def sigv4_headers(
    *,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    when: datetime,
    service: str = "s3",
    query: str = "",
) -> dict[str, str]:
    """The headers of a request signed with AWS Signature Version 4: `headers` with
    `x-amz-date`, `x-amz-content-sha256` and `Authorization` added. Every header given is
    signed (with `host`). `path` is the URI-encoded path as sent (S3 encodes it once);
    `query` the canonical query string (empty here)."""
    amz_date = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed: dict[str, str] = {
        name.lower(): " ".join(value.split()) for name, value in headers.items()
    }
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        [
            method.upper(),
            path,
            query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            signed_headers,
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        **headers,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_sha256,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def encode_path(path: str) -> str:
    """A path as S3's canonical request has it: every byte but unreserved ones and `/`
    percent-encoded."""
    return quote(path, safe="/-_.~")


class S3Storage:
    """Objects in one bucket of an S3-compatible store, addressed path-style."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        *,
        clock: Callable[[], datetime] | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the S3 endpoint is an http:// or https:// URL")
        if not bucket or not region or not access_key or not secret_key:
            raise ValueError("S3 needs a bucket, a region, an access key and a secret key")
        self._http = session
        self._scheme = parts.scheme
        self._host = parts.netloc  # as sent in Host: with the port when there is one
        self._base_path = parts.path.rstrip("/")
        self._bucket = bucket
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._attempts = max(1, attempts)

    def __repr__(self) -> str:
        # never the keys
        return f"S3Storage({self._scheme}://{self._host}{self._base_path}, bucket={self._bucket!r})"

    @property
    def name(self) -> str:
        return "s3"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        status, body = await self._request("PUT", key, data, {"Content-Type": content_type})
        if status != 200:
            raise self._refused("PUT", status, body)

    async def get(self, key: str) -> bytes:
        status, body = await self._request("GET", key)
        if status == 404:
            raise ObjectMissing(key)
        if status != 200:
            raise self._refused("GET", status, body)
        return body

    async def delete(self, key: str) -> None:
        status, body = await self._request("DELETE", key)
        # S3 answers 204 whether or not the key existed; others may say 404
        if status not in (200, 204, 404):
            raise self._refused("DELETE", status, body)

    async def _request(
        self,
        method: str,
        key: str,
        data: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        path = encode_path(f"{self._base_path}/{self._bucket}/{check_key(key)}")
        url = URL(f"{self._scheme}://{self._host}{path}", encoded=True)
        payload = hashlib.sha256(data).hexdigest() if data else EMPTY_SHA256
        last: BaseException | None = None
        for attempt in range(1, self._attempts + 1):
            signed = sigv4_headers(
                method=method,
                host=self._host,
                path=path,
                headers=dict(headers or {}),
                payload_sha256=payload,
                access_key=self._access_key,
                secret_key=self._secret_key,
                region=self._region,
                when=self._clock(),
            )
            try:
                async with self._http.request(
                    method,
                    url,
                    data=data if method == "PUT" else None,
                    headers={"Host": self._host, **signed},
                    timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
                    allow_redirects=False,
                ) as response:
                    body = await _read_bounded(response)
                    if response.status not in _RETRIED_STATUSES or attempt == self._attempts:
                        return response.status, body
                    last = None
                    log.warning("storage_retry", store="s3", method=method, status=response.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                last = error
                log.warning("storage_retry", store="s3", method=method, error=type(error).__name__)
            if attempt < self._attempts:
                await asyncio.sleep(RETRY.delay(attempt))
        raise StorageUnavailable(
            f"the S3 store could not be reached ({type(last).__name__})",
            details={"store": "s3"},
        )

    def _refused(self, method: str, status: int, body: bytes) -> StorageUnavailable:
        # S3's error document names the reason (AccessDenied, NoSuchBucket…); its message
        # may quote the request, so only the code is kept
        found = _ERROR_CODE.search(body[:4096])
        code = found.group(1).decode() if found else ""
        log.error("storage_refused", store="s3", method=method, status=status, code=code)
        return StorageUnavailable(
            f"the S3 store refused {method} with {status} {code}".rstrip(),
            details={"store": "s3", "status": status, "code": code},
        )


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """The body, refused past MAX_STORED_BYTES (no stored object is that big)."""
    length = response.content_length
    if length is not None and length > MAX_STORED_BYTES:
        raise StorageUnavailable(
            "the S3 store answered with an object too large to be an attachment",
            details={"store": "s3", "status": response.status},
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        total += len(chunk)
        if total > MAX_STORED_BYTES:
            raise StorageUnavailable(
                "the S3 store answered with an object too large to be an attachment",
                details={"store": "s3", "status": response.status},
            )
        chunks.append(chunk)
    return b"".join(chunks)
