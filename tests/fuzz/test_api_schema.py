"""schemathesis over /api/v1's own OpenAPI, against a real gateway on
loopback, as a participant and as an admin: no answer is a 5xx, none hangs,
and a participant's fuzzing leaves another person's state as it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import Gateway, Person
from tests.fuzz.worker import register_worker

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25  # bounded: the whole file stays well under a minute
REQUEST_TIMEOUT_S = 10.0


def fuzz_as(gateway: Gateway, auth: tuple[str, str], skip: tuple[str, ...] = ()) -> list[str]:
    """Every operation's generated requests; the 5xx found, as readable lines."""
    schema = schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json")
    found: list[str] = []
    answered: list[int] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 5, "the schema lists too few operations"
    with httpx.Client(base_url=gateway.url, auth=auth, timeout=REQUEST_TIMEOUT_S) as http:
        for operation in operations:
            if operation.label not in skip:
                fuzz_one(
                    http, gateway.url, operation.label, operation.as_strategy(), found, answered
                )
    # the fuzzing reached the routes signed in, not only the login wall
    assert len(answered) > 3 * len(operations), len(answered)
    assert sum(1 for code in answered if code < 300) >= 10, sorted(set(answered))
    print(f"{len(operations)} operations, {len(answered)} requests, codes {sorted(set(answered))}")
    return found


def fuzz_one(
    http: httpx.Client, base: str, label: str, cases: Any, found: list[str], answered: list[int]
) -> None:
    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=base)
        kwargs.pop("base_url", None)
        method, url = kwargs.pop("method"), kwargs.pop("url")
        headers = {
            k: v
            for k, v in (kwargs.pop("headers", None) or {}).items()
            if k.lower() != "authorization"  # the signed-in person stays who they are
        }
        cookies = kwargs.pop("cookies", None) or {}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        try:
            answer = http.request(method, url, headers=headers, **_httpx(kwargs))
        except httpx.TimeoutException:
            found.append(f"{label}: no answer in {REQUEST_TIMEOUT_S} s")
            return
        except httpx.TransportError as e:  # the server dropped the connection: a crash
            found.append(f"{label}: connection dropped ({e!r}) for {case.body!r:.200}")
            return
        answered.append(answer.status_code)
        if answer.status_code >= 500:
            found.append(
                f"{label}: {answer.status_code} for {case.path_parameters} "
                f"{case.query} {case.body!r:.200}"
            )

    one()


def _httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("params", "json", "content", "data", "files"):
        if kwargs.get(key) is not None:
            out[key] = kwargs[key]
    if isinstance(out.get("data"), bytes | str):  # a raw body, as httpx wants it
        out["content"] = out.pop("data")
    return out


def snapshot(gateway: Gateway, who: Person) -> dict[str, Any]:
    with httpx.Client(base_url=gateway.url, auth=who.auth, timeout=REQUEST_TIMEOUT_S) as http:
        return {
            "me": http.get("/api/v1/me").json(),
            "history": http.get(f"/u/{who.name}/api/history").json(),
            "settings": http.get(f"/u/{who.name}/api/settings").json(),
        }


def test_api_fuzzed_as_participant_no_5xx_no_cross_user_effect(
    gateway: Gateway, people: dict[str, Person], worker_token: str
) -> None:
    register_worker(gateway, worker_token)
    bob = people["bob"]
    with httpx.Client(base_url=gateway.url, auth=bob.auth) as http:
        http.post("/u/bob/api/settings/Comfy.Theme", json="dark").raise_for_status()
    before = snapshot(gateway, bob)
    found = fuzz_as(gateway, people["alice"].auth)
    assert not found, "\n".join(found[:20])
    assert snapshot(gateway, bob) == before, "alice's fuzzing changed bob's state"


def test_api_fuzzed_as_admin_no_5xx(
    gateway: Gateway, people: dict[str, Person], worker_token: str
) -> None:
    register_worker(gateway, worker_token)
    found = fuzz_as(gateway, people["teacher"].auth)
    assert not found, "\n".join(found[:20])
