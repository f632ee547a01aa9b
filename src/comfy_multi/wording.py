"""Small helpers that keep what people read in good English: counts and sentences."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 job`, `2 jobs`, `0 jobs`; `plural_form` for the irregular ones."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count:,} {word}"


def sentence(text: str) -> str:
    """A message as a person reads it: a capital first letter (names and code
    stay as written after it)."""
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
