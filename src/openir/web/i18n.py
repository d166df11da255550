"""Interface languages: message catalogues (JSON, one per language) chosen per user."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh-CN")
HERE = Path(__file__).with_name("i18n")


@lru_cache(maxsize=4)
def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of one language (read once)."""
    return json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))


def pick(lang: str | None, accept: str | None = None) -> str:
    """The interface language: the user's own if supported, else from Accept-Language, else English."""
    if lang in LANGS:
        return lang  # type: ignore[return-value]
    if accept and accept.lower().startswith("zh"):
        return "zh-CN"
    return "en"


def translator(lang: str):
    """``t(key)``: the message in ``lang``, else English, else the key itself."""
    own, en = catalogue(pick(lang)), catalogue("en")

    def t(key: str) -> str:
        return own.get(key) or en.get(key) or key

    return t
