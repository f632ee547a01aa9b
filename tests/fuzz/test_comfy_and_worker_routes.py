"""hypothesis over the ComfyUI-compatible routes (as alice), the websocket
messages, and the worker channel (as a worker): no 5xx, nothing hangs, and
bob's state (history, settings, user data, files) is as it was."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.conftest import Gateway, Person
from tests.fuzz.test_api_schema import REQUEST_TIMEOUT_S
from tests.fuzz.worker import register_worker

pytestmark = pytest.mark.slow

BUDGET = settings(
    max_examples=120,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
segments = st.sampled_from(["..", "%2e%2e", "bob", "", ".", "a b", "%00", "x" * 300]) | st.text(
    max_size=12
)
COMFY = [
    ("POST", "prompt"),
    ("GET", "prompt"),
    ("GET", "settings"),
    ("POST", "settings"),
    ("POST", "settings/{seg}"),
    ("GET", "settings/{seg}"),
    ("GET", "userdata"),
    ("GET", "userdata/{seg}"),
    ("POST", "userdata/{seg}"),
    ("DELETE", "userdata/{seg}"),
    ("POST", "userdata/{seg}/move/{seg}"),
    ("GET", "view"),
    ("POST", "upload/image"),
    ("POST", "upload/mask"),
    ("POST", "jobs/cancel"),
    ("GET", "jobs"),
    ("GET", "jobs/{seg}"),
    ("GET", "history"),
    ("GET", "history/{seg}"),
    ("POST", "history"),
    ("POST", "queue"),
    ("POST", "interrupt"),
]
query = st.dictionaries(
    st.sampled_from(
        [
            "filename",
            "subfolder",
            "type",
            "dir",
            "max_items",
            "offset",
            "preview",
            "channel",
            "overwrite",
            "full_info",
        ]
    ),
    segments,
    max_size=4,
)


def bob_state(http: httpx.Client) -> dict[str, Any]:
    auth = ("bob", "bob-pw")
    return {
        path: http.get(f"/u/bob/api/{path}", auth=auth).text
        for path in ("history", "settings", "userdata?dir=workflows", "queue")
    }


def send(http: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response | str:
    try:
        answer = http.request(method, url, **kw)
    except httpx.TimeoutException:
        return f"{method} {url}: no answer in {REQUEST_TIMEOUT_S} s"
    except httpx.TransportError as e:
        return f"{method} {url}: connection dropped ({e!r})"
    if answer.status_code >= 500:
        return f"{method} {url} {kw!r:.200}: {answer.status_code} {answer.text[:200]}"
    return answer


def test_comfy_routes_fuzzed_no_5xx_no_cross_user_effect(
    gateway: Gateway, people: dict[str, Person], worker_token: str
) -> None:
    register_worker(gateway, worker_token)
    found: list[str] = []
    codes: list[int] = []
    with httpx.Client(base_url=gateway.url, timeout=REQUEST_TIMEOUT_S) as http:
        bob = ("bob", "bob-pw")
        http.post("/u/bob/api/settings/Comfy.Theme", json="dark", auth=bob).raise_for_status()
        http.post("/u/bob/api/userdata/workflows%2Fmine.json", content=b"{}", auth=bob)
        before = bob_state(http)

        @given(
            route=st.sampled_from(COMFY),
            seg=segments,
            params=query,
            body=json_values,
            raw=st.binary(max_size=200),
            as_json=st.booleans(),
            owner=st.sampled_from(["alice", "bob", "ALICE", "alice/../bob", "nobody"]),
            headers=st.dictionaries(
                st.sampled_from(
                    ["Content-Type", "Range", "If-None-Match", "Origin", "X-Forwarded-For"]
                ),
                st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
                max_size=2,
            ),
        )
        @BUDGET
        def one(
            route: tuple[str, str],
            seg: str,
            params: dict[str, str],
            body: Any,
            raw: bytes,
            as_json: bool,
            owner: str,
            headers: dict[str, str],
        ) -> None:
            method, path = route
            url = f"/u/{owner}/api/" + path.replace("{seg}", quote(seg, safe="/%."))
            kw: dict[str, Any] = {
                "params": params,
                "headers": headers,
                "auth": ("alice", "alice-pw"),
            }
            if method in ("POST", "DELETE"):
                kw["content"] = json.dumps(body).encode() if as_json else raw
            result = send(http, method, url, **kw)
            if isinstance(result, str):
                found.append(result)
            else:
                codes.append(result.status_code)

        one()
        assert not found, "\n".join(found[:20])
        assert sum(1 for c in codes if c < 300) >= 10, sorted(set(codes))  # not all refused
        assert bob_state(http) == before, "alice's requests changed bob's state"


def test_websocket_messages_fuzzed_socket_survives(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    with httpx.Client(base_url=gateway.url) as http:
        cookie = http.post("/api/v1/login", json={"name": "alice", "password": "alice-pw"}).cookies[
            "cm_session"
        ]
    url = gateway.url.replace("http", "ws") + "/u/alice/ws"
    headers = {"Cookie": f"cm_session={cookie}", "Origin": gateway.url}

    @given(
        frames=st.lists(
            st.one_of(
                st.builds(
                    lambda t, d: json.dumps({"type": t, "data": d}),
                    st.sampled_from(["feature_flags", "comfy_multi.hello", "status", "x", ""])
                    | st.text(max_size=10),
                    json_values,
                ),
                json_values.map(json.dumps),
                st.text(max_size=50),
                st.binary(max_size=50),
            ),
            min_size=1,
            max_size=5,
        )
    )
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(frames: list[str | bytes]) -> None:
        with connect(url, additional_headers=headers, open_timeout=REQUEST_TIMEOUT_S) as ws:
            ws.recv(timeout=REQUEST_TIMEOUT_S)  # the greeting
            for frame in frames:
                try:
                    ws.send(frame)
                except Exception:  # the server may close on nonsense: that is allowed
                    break
        # the gateway still answers, and a fresh socket still greets
        assert httpx.get(f"{gateway.url}/health", timeout=REQUEST_TIMEOUT_S).status_code == 200

    one()
    with connect(url, additional_headers=headers, open_timeout=REQUEST_TIMEOUT_S) as ws:
        assert json.loads(ws.recv(timeout=REQUEST_TIMEOUT_S))["type"] == "status"


WORKER = [
    ("POST", "register"),
    ("PUT", "object_info"),
    ("POST", "claim"),
    ("POST", "heartbeat"),
    ("GET", "whoami"),
    ("GET", "jobs/{seg}/inputs"),
    ("POST", "jobs/{seg}/events"),
    ("PUT", "jobs/{seg}/preview"),
    ("PUT", "jobs/{seg}/outputs"),
    ("POST", "jobs/{seg}/complete"),
    ("POST", "jobs/{seg}/fail"),
    ("POST", "jobs/{seg}/cancelled"),
    ("POST", "jobs/{seg}/release"),
]


def test_worker_channel_fuzzed_no_5xx(
    gateway: Gateway, people: dict[str, Person], worker_token: str
) -> None:
    register_worker(gateway, worker_token)
    found: list[str] = []
    with httpx.Client(base_url=gateway.url, timeout=REQUEST_TIMEOUT_S) as http:
        job = http.post(
            "/u/bob/api/prompt",
            auth=("bob", "bob-pw"),
            json={
                "prompt": {
                    "1": {"class_type": "EmptyImage", "inputs": {"width": 8}},
                    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
                }
            },
        ).json()["prompt_id"]

        @given(
            route=st.sampled_from(WORKER),
            seg=st.sampled_from([job, "nope", "..", ""]) | segments,
            params=st.dictionaries(
                st.sampled_from(["digest", "filename", "subfolder", "type"]), segments, max_size=3
            ),
            body=json_values,
            raw=st.binary(max_size=200),
            as_json=st.booleans(),
            lease=st.dictionaries(
                st.sampled_from(
                    [
                        "X-Lease-Token",
                        "X-Worker-Id",
                        "Content-Type",
                        "Content-Encoding",
                        "X-Preview-Meta",
                    ]
                ),
                st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
                max_size=3,
            ),
        )
        @BUDGET
        def one(
            route: tuple[str, str],
            seg: str,
            params: dict[str, str],
            body: Any,
            raw: bytes,
            as_json: bool,
            lease: dict[str, str],
        ) -> None:
            method, path = route
            headers = {"Authorization": f"Bearer {worker_token}", **lease}
            kw: dict[str, Any] = {"params": params, "headers": headers}
            if method != "GET":
                kw["content"] = json.dumps(body).encode() if as_json else raw
            if path == "claim" and isinstance(body, dict):
                kw["content"] = json.dumps({**body, "wait_seconds": 0}).encode()
            result = send(
                http, method, "/worker/v1/" + path.replace("{seg}", quote(seg, safe="/%.")), **kw
            )
            if isinstance(result, str):
                found.append(result)

        one()
        assert not found, "\n".join(found[:20])
