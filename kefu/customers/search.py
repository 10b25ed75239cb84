"""Search keys for customers: simplified name, every pinyin reading, initials, phone tails.

pypinyin has no surname mode, so heteronyms (单, 曾, 仇...) are indexed under every reading.
Traditional characters are folded to simplified with OpenCC, both in the index and the query.
"""

import itertools
import re
import unicodedata
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
# A piece of a phone number as people write it: 138, 5712-3456, +86, (0571), 8706.1128.
_PHONE_PIECE_RE = re.compile(r"^[+＋]?[(（]?\d[\d\-－.()（）]*$")
_PHONE_DIGITS = range(7, 16)  # a written-out number has 7 to 15 digits (E.164: 15 at most)


def _digits(text: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in text if c.isdigit())


def _phone_term(pieces: list[str]) -> list[str]:
    """One term for a phone number written in groups ("138 5712 3456", "138-5712-3456",
    "+86 138 5712 3456", "(0571) 8706 1128"): its digits as the archive indexes them
    (contacts.phone_search_tokens). Other runs of digits stay as they were typed."""
    from kefu.customers.contacts import ContactInvalid, phone_normalize, phone_search_tokens

    digits = _digits("".join(pieces))
    written_out = len(pieces) > 1 or not pieces[0].isdigit()
    if not written_out or len(digits) not in _PHONE_DIGITS:
        return pieces
    prefix = "+" if pieces[0][:1] in "+＋" else ""
    try:
        return [phone_search_tokens(phone_normalize(prefix + digits))[0]]
    except ContactInvalid:
        return [digits]  # the start of a number: found as a prefix of the digits


def query_terms(query: str) -> list[str]:
    """Split a user's query into terms; each must match (simplified, lower-case).

    A phone number written in groups becomes one term of its digits. Terms without a letter,
    digit or character (a lone "-") are dropped.
    """
    terms: list[str] = []
    pieces: list[str] = []
    for word in [*query.split(), ""]:
        if word and _PHONE_PIECE_RE.match(word):
            pieces.append(word)
            continue
        if pieces:
            terms.extend(_phone_term(pieces))
            pieces = []
        if word:
            terms.append(word)
    terms = [to_simplified(term).lower() for term in terms]
    return [term for term in terms if _WORD_RE.search(term)]


def term_pattern(term: str) -> str:
    """LIKE substring: the term at the start of a token."""
    return " " + term


def fts_match(terms: list[str]) -> str:
    """FTS5 query: every term as a token prefix ("zs"* "1234"*)."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)
