"""Every Redis key is named once, in store/keys.py: the Lua scripts use only
the key table generated from it, and that table spells keys as Python does."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import pytest

from comfy_multi.store import keys
from comfy_multi.store.scripts import preamble

LUA = files("comfy_multi.store.lua")
SCRIPTS = sorted(p.name for p in LUA.iterdir() if p.name.endswith(".lua"))
KEY_USE = re.compile(r"\bK\.([A-Za-z_][A-Za-z0-9_]*)")


def code_and_strings(source: str) -> tuple[str, list[str]]:
    """The source without comments and string literals, and the literals."""
    code: list[str] = []
    strings: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if source.startswith("--", i):
            i = source.find("\n", i) % (len(source) + 1) if "\n" in source[i:] else len(source)
        elif ch in "'\"":
            j, text = i + 1, []
            while source[j] != ch:
                if source[j] == "\\":
                    j += 1
                text.append(source[j])
                j += 1
            strings.append("".join(text))
            code.append("''")
            i = j + 1
        else:
            code.append(ch)
            i += 1
    return "".join(code), strings


def key_like(literal: str) -> bool:
    """A literal that spells a key or the start of one ('cm:...', 'job:', ...)."""
    segments = {t.split(":")[0] + ":" for t in keys.TEMPLATES.values() if ":" in t}
    return literal.startswith(keys.PREFIX) or any(literal.startswith(s) for s in segments)


# a command whose key is a literal: redis.call('HGET', 'config', ...)
LITERAL_KEY = re.compile(r"redis\.call\(\s*'[A-Za-z]+'\s*,\s*['\"]")


def test_the_scanner_sees_keys_spelled_by_hand() -> None:
    source = "local x = P .. 'job:' .. id -- 'cm:config'\nK.nope('a')"
    code, strings = code_and_strings(source)
    assert any(key_like(s) for s in strings)
    assert LITERAL_KEY.search("redis.call('HGET', 'config', 'mode')")
    assert "'cm:config'" not in code
    assert KEY_USE.findall(code) == ["nope"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_spell_no_key_themselves(name: str) -> None:
    source = LUA.joinpath(name).read_text()
    code, strings = code_and_strings(source)
    assert not LITERAL_KEY.search(source), "a key given as a literal"
    assert not re.search(r"\bKEYS\b", code), "the prefix reaches scripts only through K"
    assert not re.search(r"\bP\b", code), "keys are built by K, not from the prefix"
    undeclared = set(KEY_USE.findall(code)) - set(keys.TEMPLATES)
    assert not undeclared, f"keys not declared in store/keys.py: {sorted(undeclared)}"
    spelled = [s for s in strings if key_like(s)]
    assert not spelled, f"key spelled by hand: {spelled}"


async def test_the_key_table_spells_keys_as_python_does(aredis: Any) -> None:
    names = list(keys.TEMPLATES)
    body = "local out = {}\n"
    for name in names:
        holes = keys.TEMPLATES[name].count("{}")
        if holes:
            args = ", ".join(f"'x{i}'" for i in range(holes))
            body += f"out[#out + 1] = K.{name}({args})\n"
        else:
            body += f"out[#out + 1] = K.{name}\n"
    spelled = await aredis.eval(preamble(10) + body + "return out", 1, keys.PREFIX)
    expected = [
        keys.PREFIX + t.format(*(f"x{i}" for i in range(t.count("{}"))))
        for t in keys.TEMPLATES.values()
    ]
    assert spelled == expected
    assert keys.job("x0") in spelled
    assert keys.pending_user(5, "bob") == keys.PREFIX + "pending:5:u:bob"
