"""An S3-compatible server for tests: moto in server mode, started here on a free port.

`s3_server()` starts one per test session (stopped when the session exits) and answers
where it is, its bucket and credentials. The server checks every request's AWS Signature
Version 4 against those credentials, as AWS does (moto's IAM authentication, turned on once
the user, its key and the bucket are made), so a wrongly signed request fails the tests
instead of passing unnoticed. boto3 (moto's own dependency) makes the user and the bucket
here; the code under test speaks S3 by itself.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # tests only (moto's own); the code speaks S3 itself

from tests.support.node import free_port

REGION = "us-east-1"
BUCKET = "splitgo-attachments"
_START_TIMEOUT = 30.0  # moto's imports are slow on a busy machine

_session_server: S3Server | None = None


@dataclass
class S3Server:
    """A running moto server: its endpoint, bucket and the credentials it accepts."""

    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] = field(repr=False)
    folder: Path = field(repr=False)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers); a no-op once stopped."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client(self) -> Any:
        """A boto3 S3 client with the server's credentials (its requests are signed)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket of a test's own: what it finds there is its own doing."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in `bucket`, sorted."""
        found: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found += [str(item["Key"]) for item in page.get("Contents", [])]
        return sorted(found)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "moto.log").read_text(errors="replace")
        return ""


def s3_server() -> S3Server:
    """The S3 server of this test session, started on first use."""
    global _session_server
    if _session_server is None or _session_server.process.poll() is not None:
        _session_server = start_s3_server()
    return _session_server


def start_s3_server(*, bucket: str = BUCKET, region: str = REGION) -> S3Server:
    """Start a new moto server on a free port with `bucket` in it and signatures checked;
    it is stopped when the session exits, should the test not stop it itself."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-test-s3-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (folder / "moto.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
        )
    server = S3Server(endpoint, bucket, region, "", "", process, folder)
    atexit.register(shutil.rmtree, folder, True)
    atexit.register(server.stop)  # registered after rmtree, so it runs before it
    try:
        _wait_ready(server)
        server.access_key, server.secret_key = _provision(endpoint, bucket, region)
        _require_signatures(endpoint)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/data.json", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"moto did not start at {server.endpoint}:\n{server.log()}"
                ) from None
            time.sleep(0.05)


def _provision(endpoint: str, bucket: str, region: str) -> tuple[str, str]:
    """A user allowed all of S3, its access key and the bucket (before signatures are
    checked: moto's first requests may be anonymous)."""
    anonymous = {
        "endpoint_url": endpoint,
        "region_name": region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    iam = boto3.client("iam", **anonymous)
    iam.create_user(UserName="splitgo")
    iam.put_user_policy(
        UserName="splitgo",
        PolicyName="attachments",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="splitgo")["AccessKey"]
    boto3.client("s3", **anonymous).create_bucket(Bucket=bucket)
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _require_signatures(endpoint: str) -> None:
    """From now on moto checks every request's signature and the user's permissions."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",  # anonymous requests left: none
        method="POST",
        # not a form: moto reads the raw body
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        answer.read()
