"""Production hashes passwords with argon2's recommended cost; the cheap profile the
suite uses cannot be switched on for a gateway that others can reach."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from comfy_multi.errors import ConfigError
from comfy_multi.services.users import FAST_HASHING_FOR_TESTS, UserStore, password_hasher
from comfy_multi.settings import Settings, load_settings
from comfy_multi.store import keys


def test_production_default_is_argon2s_recommended_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFY_MULTI_PASSWORD_HASHING", raising=False)
    assert Settings().password_hashing == "argon2"
    recommended = PasswordHasher()
    chosen = password_hasher(Settings().password_hashing)
    assert (chosen.memory_cost, chosen.time_cost) == (
        recommended.memory_cost,
        recommended.time_cost,
    )
    assert chosen.memory_cost >= 65536


def test_only_the_named_test_profile_is_accepted() -> None:
    with pytest.raises(ConfigError, match="PASSWORD_HASHING"):
        load_settings(password_hashing="fast")


def test_the_test_profile_is_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        load_settings(password_hashing=FAST_HASHING_FOR_TESTS, host="0.0.0.0")


async def test_a_cheap_hash_verifies_and_a_strong_one_too(aredis: Any) -> None:
    """Verification reads the cost from each stored hash, so either store reads both."""
    cheap = UserStore(aredis, hasher=password_hasher(FAST_HASHING_FOR_TESTS))
    await cheap.add("alice", "alice-pw")
    assert "m=8," in await aredis.hget(keys.user("alice"), "pw")
    assert (await UserStore(aredis).verify_password("alice", "alice-pw")).name == "alice"
