"""Interface languages: message catalogues (JSON, one per language) chosen per user."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh-CN")
HERE = Path(__file__).with_name("i18n")


@lru_cache(maxsize=4)
def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of one language (read once): ``<lang>.json`` and every area's own
    ``<area>.<lang>.json`` (so each page's strings live beside each other, not in one long file).
    A key defined twice is an error, so one area cannot silently rename another's text."""
    merged: dict[str, str] = json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))
    for part in sorted(HERE.glob(f"*.{lang}.json")):
        extra = json.loads(part.read_text(encoding="utf-8"))
        twice = sorted(set(extra) & set(merged))
        if twice:
            raise ValueError(f"{part.name}: message keys already defined elsewhere: {', '.join(twice[:5])}")
        merged.update(extra)
    return merged


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
