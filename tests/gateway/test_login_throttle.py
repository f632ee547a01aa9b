"""Sign-in throttling, timing and load: against the real gateway and Redis,
from more than one client address (127.0.0.x are all loopback)."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path

import httpx

from ..conftest import Gateway, Person, ServerThread, wait_for


def from_address(gateway: Gateway, address: str, timeout: float = 30) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=gateway.url, transport=transport, timeout=timeout)


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/login", json={"name": name, "password": password})


async def test_failed_sign_ins_wait_per_account_and_the_real_person_still_gets_in(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    limit = gateway.settings.login_failures_per_account
    second = ServerThread(gateway.settings).start()  # another gateway process, same Redis
    async with from_address(gateway, "127.0.0.2") as guesser:
        for _ in range(limit):
            assert (await login(guesser, "alice", "guess")).status_code == 401
        held = await login(guesser, "alice", "guess")
        assert held.status_code == 429, held.text
        assert int(held.headers["retry-after"]) >= 1
        assert "try again" in held.json()["message"]
        # while waiting, even the right password is not checked from there
        assert (await login(guesser, "alice", "alice-pw")).status_code == 429
        # HTTP Basic shares the throttle
        r = await guesser.get("/api/v1/me", auth=("alice", "guess"))
        assert r.status_code == 429
    # the real alice, from her own address, signs in
    async with from_address(gateway, "127.0.0.3") as real:
        assert (await login(real, "alice", "alice-pw")).status_code == 200
        assert (await real.get("/api/v1/me", auth=people["alice"].auth)).status_code == 200
    # another gateway process sees the same wait (the state is in Redis)
    try:
        other = Gateway(second.url, gateway.settings, second)
        async with from_address(other, "127.0.0.2") as guesser:
            assert (await login(guesser, "alice", "alice-pw")).status_code == 429
    finally:
        second.stop()


async def test_one_address_guessing_many_names_waits(gateway: Gateway) -> None:
    limit = gateway.settings.login_failures_per_address
    async with from_address(gateway, "127.0.0.4") as guesser:
        codes = [(await login(guesser, f"name{i}", "guess")).status_code for i in range(limit + 1)]
    assert codes[:limit] == [401] * limit
    assert codes[limit] == 429


async def _timed_login(client: httpx.AsyncClient, name: str) -> float:
    start = time.perf_counter()
    r = await login(client, name, "wrong password")
    assert r.status_code == 401
    return time.perf_counter() - start


async def test_unknown_names_cost_what_known_ones_cost(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    known, unknown = [], []
    async with from_address(gateway, "127.0.0.5") as client:
        for i in range(4):  # interleaved, so load on the machine hits both alike
            known.append(await _timed_login(client, ["alice", "bob", "carol", "teacher"][i]))
            unknown.append(await _timed_login(client, f"nobody{i}"))
    known_s, unknown_s = statistics.median(known), statistics.median(unknown)
    assert unknown_s > known_s * 0.5, (known_s, unknown_s)
    assert unknown_s < known_s * 2.0, (known_s, unknown_s)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_crowd_of_wrong_passwords_neither_balloons_memory_nor_slows_others(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    """40 wrong passwords at once, from many addresses: argon2 (64 MiB each)
    runs a few at a time, so memory stays flat and a signed-in person's
    requests stay quick. The gateway runs in this process: its RSS is ours."""
    async with gateway.client(auth=people["bob"].auth) as bob:
        assert (await bob.get("/api/v1/me")).status_code == 200  # Basic now remembered
        base_mb, peak_mb = _rss_mb(), [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak_mb[0] = max(peak_mb[0], _rss_mb())
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        crowd = [from_address(gateway, f"127.0.1.{i}", timeout=300) for i in range(40)]
        try:
            attack = asyncio.gather(*(login(c, "alice", f"guess{i}") for i, c in enumerate(crowd)))
            task = asyncio.ensure_future(attack)
            # measure while the crowd's checks are all in: running or waiting their turn
            checks = gateway.server.server.config.app.state.platform.users.checks
            await wait_for(lambda: checks.queued >= len(crowd) // 2, timeout=120)
            waits = []
            for _ in range(10):
                start = time.perf_counter()
                assert (await bob.get("/api/v1/me")).status_code == 200
                waits.append(time.perf_counter() - start)
            answers = await task
        finally:
            stop.set()
            sampler.join()
            for c in crowd:
                await c.aclose()
    assert {r.status_code for r in answers} <= {401, 503}
    assert max(waits) < 2.0, waits  # was 12 s with every check at once
    grown = peak_mb[0] - base_mb
    assert grown < 250, f"RSS grew {grown:.0f} MB"
