import asyncio

from comfy_multi.worker.retry import Backoff, until_set


def test_backoff_grows_with_jitter_and_stays_capped() -> None:
    backoff = Backoff(first=0.1, cap=2.0)
    for attempt in range(40):
        ceiling = min(2.0, 0.1 * 2**attempt)
        assert ceiling / 2 <= backoff.delay(attempt) <= ceiling
    assert len({backoff.delay(3) for _ in range(20)}) > 1


async def test_until_set_returns_the_result_or_stops() -> None:
    stop = asyncio.Event()
    assert await until_set(asyncio.sleep(0, result=5), stop) == (True, 5)
    never = asyncio.Event()
    task = asyncio.create_task(until_set(never.wait(), stop))
    stop.set()
    assert await asyncio.wait_for(task, 5) == (False, None)
