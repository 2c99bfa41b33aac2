"""One trace across two nodes: a request's W3C trace id is on the log lines of the node
that took the request and of the node whose actor handled (and refused) it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from splitgo.tracing import parse_traceparent
from tests.e2e.test_cluster import cluster_on, eventually
from tests.support.node import RunningNode, start_node
from tests.support.redis import redis_url

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"
JWT_KEYS = "tracing:" + "t" * 48


def log_lines(node: RunningNode) -> list[dict[str, Any]]:
    """The node's JSON log lines (SPLITGO_LOG_FORMAT=json, written to its folder)."""
    lines = []
    for raw in (node.folder / "stderr.log").read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def traced(node: RunningNode, trace_id: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(node) if line.get("trace_id") == trace_id]


async def test_a_trace_id_crosses_nodes(tmp_path: Path) -> None:
    """A ride request to node 1 with a `traceparent`, refused (422) by the rides actor on
    node 2: both nodes log that trace id, and the answer's traceparent carries it. The
    sign-up's verification mail, written on node 2 through the outbox, carries the
    sign-up's trace id too."""
    async with cluster_on(tmp_path, redis_url()) as cluster:
        env = {
            **cluster.env(),
            "SPLITGO_PLUGINS": "",
            "SPLITGO_JWT_KEYS": JWT_KEYS,
            "SPLITGO_LOG_FORMAT": "json",
        }
        flags = ("--transport", "redis")
        first = await start_node(
            tmp_path / "one",
            *flags,
            "--node-id",
            "one",
            "--actors",
            "auth,payments,splits",
            env=env,
        )
        cluster.nodes.append(first)
        second = await start_node(
            tmp_path / "two",
            *flags,
            "--node-id",
            "two",
            "--actors",
            "rides,notifications",
            env=env,
        )
        cluster.nodes.append(second)

        sign_up_trace = secrets.token_hex(16)
        ride_trace = secrets.token_hex(16)
        email = f"rider-{secrets.token_hex(4)}@example.com"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{first.url}/api/v1/auth/register",
                json={"email": email, "password": PASSWORD, "name": "Rider"},
                headers={"traceparent": f"00-{sign_up_trace}-{secrets.token_hex(8)}-01"},
            ) as response:
                assert response.status == 201, await response.text()
            async with http.post(
                f"{first.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            ) as response:
                assert response.status == 200, await response.text()
                token = (await response.json())["access_token"]
            caller_span = secrets.token_hex(8)
            async with http.post(
                f"{first.url}/api/v1/rides",
                # Berlin to Sydney: refused by the rides actor itself (on node 2), trip_too_long
                json={
                    "pickup": {"lat": 52.5, "lon": 13.4},
                    "dropoff": {"lat": -33.9, "lon": 151.2},
                },
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{ride_trace}-{caller_span}-01",
                    "Idempotency-Key": secrets.token_hex(8),
                },
            ) as response:
                assert response.status == 422, await response.text()
                problem = await response.json()
                answer = parse_traceparent(response.headers.get("traceparent"))
        assert problem["errors"][0]["field"] == "$.dropoff"
        assert answer is not None
        assert answer.trace_id == ride_trace
        assert answer.parent_id != caller_span

        async def both_logged() -> bool:
            return bool(traced(first, ride_trace)) and bool(traced(second, ride_trace))

        await eventually(both_logged, 10, "the ride request's trace id in both nodes' logs")
        [request_line] = [
            line for line in traced(first, ride_trace) if line["event"] == "http_request"
        ]
        assert (request_line["path"], request_line["status"]) == ("/api/v1/rides", 422)
        refusals = [line for line in traced(second, ride_trace) if line["event"] == "actor_refused"]
        assert refusals, traced(second, ride_trace)
        assert refusals[0]["actor"] == "rides"
        assert refusals[0]["message"] == "RequestRide"
        assert refusals[0]["code"] == "trip_too_long"
        # node 2 took no HTTP request for it: the trace id travelled in the envelope
        assert not [line for line in traced(second, ride_trace) if line["event"] == "http_request"]

        async def mail_traced() -> bool:
            return any(
                line["event"] == "email_written_to_file" for line in traced(second, sign_up_trace)
            )

        await eventually(mail_traced, 15, "the verification mail on node 2, in the sign-up's trace")
        assert any(line["event"] == "http_request" for line in traced(first, sign_up_trace))
