"""Sign-in throttling, shared by every gateway process through Redis.

Two scopes count failed sign-ins (login form and HTTP Basic alike):

- one account from one address: after `login_failures_per_account` failures
  that address waits before trying that account again;
- one address, any account: after `login_failures_per_address` failures it
  waits before trying any account (guessing many names at once).

The wait doubles with each further failure, up to `login_backoff_max_seconds`,
and is answered 429 with Retry-After without checking the password, so a
guesser learns nothing while waiting. The real person, from another address,
is not held up by someone guessing at their name. Every key expires after
the window: memory stays bounded by the rate the throttle itself allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from comfy_multi.errors import TooManyAttempts
from comfy_multi.settings import Settings
from comfy_multi.store import keys

FIRST_WAIT_S = 4.0  # at the limit; each further failure doubles it
MAX_ADDRESS_CHARS = 64  # an IPv6 address with zone fits; anything longer is cut


@dataclass(frozen=True)
class Scope:
    key: str
    limit: int


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    def _scopes(self, name: str, address: str) -> list[Scope]:
        address = address[:MAX_ADDRESS_CHARS] or "unknown"
        return [
            Scope(f"acct:{name[:64]}@{address}", self.settings.login_failures_per_account),
            Scope(f"addr:{address}", self.settings.login_failures_per_address),
        ]

    async def check(self, name: str, address: str) -> None:
        """TooManyAttempts while this name or address has to wait."""
        scopes = self._scopes(name, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.pttl(keys.login_lock(scope.key))
            waits_ms = [int(ms) for ms in await pipe.execute()]
        wait_ms = max(waits_ms)
        if wait_ms > 0:
            seconds = -(-wait_ms // 1000)
            raise TooManyAttempts(
                f"too many failed sign-ins; try again in {seconds} s", retry_after_s=seconds
            )

    async def failed(self, name: str, address: str) -> None:
        window_ms = int(self.settings.login_window_seconds * 1000)
        scopes = self._scopes(name, address)
        async with self.redis.pipeline(transaction=True) as pipe:
            for scope in scopes:
                pipe.incr(keys.login_failures(scope.key))
                pipe.pexpire(keys.login_failures(scope.key), window_ms)
            counts = (await pipe.execute())[::2]
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope, count in zip(scopes, counts, strict=True):
                over = int(count) - scope.limit
                if over >= 0:
                    wait_s = min(
                        FIRST_WAIT_S * 2 ** min(over, 30), self.settings.login_backoff_max_seconds
                    )
                    pipe.set(keys.login_lock(scope.key), "1", px=max(1, int(wait_s * 1000)))
            await pipe.execute()

    async def succeeded(self, name: str, address: str) -> None:
        """The account's count from this address starts over; the address's stays."""
        account = self._scopes(name, address)[0]
        await self.redis.delete(keys.login_failures(account.key), keys.login_lock(account.key))
