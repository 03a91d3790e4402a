"""The embedded store's key index: every lookup path gives the row a dict would (last duplicate wins)."""

from __future__ import annotations

import random

import numpy as np
from inferflow_onfs.store import KeyIndex

ALPHABET = "ab\u00e9\U0001f600xz09 "


def _word(rnd: random.Random, lo: int, hi: int) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(lo, hi)))


def _expect(keys: list[str], queries: list[str]) -> list[int]:
    rows = {k: i for i, k in enumerate(keys)}  # a dict: the last row of a duplicate key wins
    return [rows.get(q, len(keys)) for q in queries]


def test_directory_matches_a_dict_on_random_keys() -> None:
    rnd = random.Random(20261201)
    for _ in range(150):
        n = rnd.choice([1, 2, 5, 33, 1000])
        keys = [_word(rnd, 1, 6) for _ in range(n)]
        if rnd.random() < 0.3:
            keys = [rnd.choice(keys) for _ in range(n)]  # duplicates
        index = KeyIndex([keys], n)
        assert index.dict is None or len(set(keys)) < n  # crowded duplicates: a dict
        for m in (0, 1, 4, 5, 200):
            queries = [rnd.choice(keys) if rnd.random() < 0.6 else _word(rnd, 0, 8) for _ in range(m)]
            if m:
                queries[-1] = rnd.choice(keys) + rnd.choice(ALPHABET)  # one character past a key
            got = index.rows([(q,) for q in queries])
            assert got.dtype == np.intp
            assert got.tolist() == _expect(keys, queries), (keys, queries)


def test_queries_the_fixed_width_text_cannot_hold_are_misses() -> None:
    keys = [str(i) for i in range(1000)]
    index = KeyIndex([keys], 1000)
    queries = ["12", "12\x00", "1\x002", "123" * 30, "999", "9999", ""] + [str(i) for i in range(20)]
    assert index.rows([(q,) for q in queries]).tolist() == _expect(keys, queries)
    assert index.rows([("7\x00",), ("7",)]).tolist() == [1000, 7]  # NUL: the per-key path
    unicode = ["\u00e9", "1\u00e9", "\U0001f600"] + [str(i) for i in range(10)]  # an ASCII index
    assert index.rows([(q,) for q in unicode]).tolist() == _expect(keys, unicode)
    assert index.rows([("\u00e9",), ("5",)]).tolist() == [1000, 5]


def test_dict_for_composite_long_nul_and_crowded_keys() -> None:
    assert KeyIndex([["a", "b"], ["x", "y"]], 2).rows([("b", "y"), ("a", "y")]).tolist() == [1, 2]
    long = ["k" * 60, "short"]
    assert KeyIndex([long], 2).rows([("k" * 60,), ("short",), ("x",)]).tolist() == [0, 1, 2]
    nul = ["a\x00", "a"]
    assert KeyIndex([nul], 2).rows([("a",), ("a\x00",), ("a\x00\x00",)]).tolist() == [1, 0, 2]
    crowded = KeyIndex([["same"] * 100 + ["other"]], 101)  # one bucket of 100: a dict instead
    assert crowded.dict is not None
    assert crowded.rows([("same",)] * 6 + [("other",)]).tolist() == [99] * 6 + [100]


def test_every_key_width_and_both_lookup_paths_match_a_dict() -> None:
    """Keys of 0-40 characters (one to several 64-bit words, at and around the word boundaries), ASCII
    and not (with a lone surrogate): the vectorised lookup, the per-key walk and a dict agree."""
    rnd = random.Random(7)
    alphabets = ("0123456789abcdef", "ab\u00e9\U0001f600\ud800 ")
    for alphabet in alphabets:
        for longest in (1, 7, 8, 9, 15, 16, 17, 40):
            n = rnd.choice([3, 50, 700])
            keys = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, longest))) for _ in range(n)]
            keys = list(dict.fromkeys([alphabet[0] * longest, *keys]))  # one key of ``longest``, no repeats
            n = len(keys)
            index = KeyIndex([keys], n)
            assert index.dict is None
            queries = [rnd.choice(keys) for _ in range(40)] + [
                "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, longest + 9))) for _ in range(40)
            ]
            queries += [keys[0] + alphabet[1], keys[0][:-1], keys[1] + "\x00", "\u00e9" * longest, ""]
            want = _expect(keys, queries)
            assert index.text_rows(queries).tolist() == want, (keys, queries)
            as_column = np.array(queries, dtype=object)
            assert index.text_rows(queries, as_column).tolist() == want, (keys, queries)
            assert [index.text_row(q) for q in queries] == want


def test_two_keys_with_one_hash_use_a_dict(monkeypatch) -> None:
    """The candidate compare of keys longer than one word looks at hashes only: a shared one (made here
    by a hash keeping only the first word) must not hide the second key."""
    monkeypatch.setattr(KeyIndex, "_hash", staticmethod(lambda text: text[:, 0].copy()))
    keys = ["prefix00-a", "prefix00-b", "other"]
    index = KeyIndex([keys], 3)
    assert index.dict is not None
    assert index.text_rows(["prefix00-b", "prefix00-a", "x", "other", "y"]).tolist() == [1, 0, 3, 2, 3]
