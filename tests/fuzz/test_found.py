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
