"""Search keys for customers: simplified name, every pinyin reading, initials, phone tails.

pypinyin has no surname mode, so heteronyms (单, 曾, 仇...) are indexed under every reading.
Traditional characters are folded to simplified with OpenCC, both in the index and the query.
"""

import itertools
import re
from functools import lru_cache

import opencc
from pypinyin import Style, pinyin

_MAX_READINGS = 16
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_converter = opencc.OpenCC("t2s")


@lru_cache(maxsize=50_000)
def to_simplified(text: str) -> str:
    return _converter.convert(text)


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


@lru_cache(maxsize=200_000)
def name_tokens(name: str) -> tuple[str, ...]:
    """['张三', 'zhangsan', 'zs'] (plus the readings of heteronyms) for a name."""
    name = name.strip()
    if not name:
        return ()
    simplified = to_simplified(name)
    tokens = [name.lower().replace(" ", ""), simplified.lower().replace(" ", "")]
    if has_cjk(simplified):
        chars = [c for c in simplified if not c.isspace()]
        full = pinyin(chars, style=Style.NORMAL, heteronym=True, errors="default")
        # Combinations of readings, capped so a long name of heteronyms stays small.
        combos = itertools.islice(itertools.product(*[r[:3] for r in full]), _MAX_READINGS)
        for combo in combos:
            full_reading = "".join(combo).lower()
            tokens.append(full_reading)
            tokens.append("".join(part[:1] for part in combo).lower())
    return tuple(dict.fromkeys(t for t in tokens if t))


def build_search_text(tokens: list[str]) -> str:
    """Space-delimited and space-wrapped, so a query can match the start of any token.

    Tokens with Chinese characters also get every suffix (王小明 → 小明, 明): matching token
    starts then finds any part of a name, in LIKE and in the full-text index alike.
    """
    cleaned = [t.strip().lower().replace(" ", "") for t in tokens if t and t.strip()]
    expanded: list[str] = []
    for token in cleaned:
        expanded.append(token)
        if has_cjk(token):
            expanded.extend(token[i:] for i in range(1, len(token)))
    return " " + " ".join(dict.fromkeys(expanded)) + " "


_WORD_RE = re.compile(r"\w")


def query_terms(query: str) -> list[str]:
    """Split a user's query into terms; each must match (simplified, lower-case).

    Terms without a letter, digit or character (a lone "-") are dropped.
    """
    terms = (to_simplified(term).lower() for term in query.split())
    return [term for term in terms if _WORD_RE.search(term)]


def term_pattern(term: str) -> str:
    """LIKE substring: the term at the start of a token."""
    return " " + term


def fts_match(terms: list[str]) -> str:
    """FTS5 query: every term as a token prefix ("zs"* "1234"*)."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)
