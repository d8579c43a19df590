"""The UI's texts: flat JSON dictionaries in webui/i18n/, one per part of the UI and language
(`chat.fr.json`), merged per language. English is complete; another language falls back to
English for any key it lacks (a test keeps French complete)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import orjson

FOLDER = Path(__file__).resolve().parent.parent / "i18n"
LANGUAGES = ("en", "fr")
DEFAULT = "en"
LANG_COOKIE = "ts_lang"


def own_texts(lang: str) -> dict[str, str]:
    """One language's texts as written, without the English fallback."""
    merged: dict[str, str] = {}
    for path in sorted(FOLDER.glob(f"*.{lang}.json")):
        merged.update(orjson.loads(path.read_bytes()))
    return merged


@lru_cache(maxsize=len(LANGUAGES))
def texts(lang: str) -> dict[str, str]:
    english = own_texts(DEFAULT)
    return english if lang == DEFAULT else {**english, **own_texts(lang)}


def choose_language(asked: str | None, cookie: str | None, accept: str | None) -> str:
    """An explicit ?lang= first, then the remembered choice, then the browser's preference."""
    for candidate in (asked, cookie):
        if candidate in LANGUAGES:
            return candidate
    best, best_q = DEFAULT, -1.0
    for part in (accept or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        base = tag.split("-")[0].lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if base in LANGUAGES and q > 0 and q > best_q:  # q=0 means "not this one"
            best, best_q = base, q
    return best
