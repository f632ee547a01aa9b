"""What the fuzzing found, kept as plain regression tests."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, Person


@pytest.mark.parametrize("path", ["/api/v1/queue/cap", "/api/v1/users/alice/cap"])
async def test_a_cap_too_large_for_64_bits_is_a_4xx_and_changes_nothing(
    gateway: Gateway, people: dict[str, Person], path: str
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as http:
        before = (await http.get("/api/v1/queue")).json()
        answer = await http.put(path, json={"cap": 2**64})
        assert answer.status_code == 422, answer.text
        assert "cap" in answer.text
        after = (await http.get("/api/v1/queue")).json()
        assert after["default_cap"] == before["default_cap"]
        assert (await http.put(path, json={"cap": 5})).status_code == 200


async def test_an_api_token_lasting_almost_no_time_is_a_400(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    """Found by fuzzing: 1e-155 days rounded to an expiry of 0 ms, which Redis refuses (503)."""
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        r = await teacher.post("/api/v1/tokens", json={"expires_days": 9.1e-156})
    assert r.status_code == 400, r.text
    assert "a second" in r.json()["message"]
