"""Gzip bodies unpacked within a budget."""

from __future__ import annotations

import gzip
import os

import pytest

from comfy_multi.errors import BadRequest, TooLarge
from comfy_multi.gateway.unpack import STEP, gunzip


def test_unpacks_one_or_several_members() -> None:
    data = os.urandom(3 * STEP + 17)
    assert gunzip(gzip.compress(data), len(data)) == data
    halves = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    assert gunzip(halves, len(data)) == data


def test_stops_at_the_budget_not_after_the_whole_body() -> None:
    packed = gzip.compress(bytes(4 * STEP))
    assert gunzip(packed, 4 * STEP) == bytes(4 * STEP)  # exactly the budget is fine
    with pytest.raises(TooLarge, match="unpacks to more than the 4,194,303 bytes allowed"):
        gunzip(packed, 4 * STEP - 1, "the thing")


@pytest.mark.parametrize(
    ("packed", "says"),
    [
        (b"\x1f\x8b but not really", "not valid gzip"),
        (gzip.compress(os.urandom(5000))[:-100], "cut short"),
        (gzip.compress(b"x") + b"junk", "not valid gzip"),
        (b"", "is empty"),
    ],
    ids=["fake-magic", "cut-short", "trailing-junk", "empty"],
)
def test_broken_bodies_are_bad_requests(packed: bytes, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        gunzip(packed, 1 << 20)
