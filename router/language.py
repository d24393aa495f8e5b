"""Which of the seven languages the router knows a prompt is written in.

Why a guess this simple: it is evidence for `route --explain`, the log and the `language:`
condition, not an input to the classifier (which reads every language itself). Script first
(kana → Japanese, Han → Chinese), then common words and accents for the Latin-script languages.
"""

from __future__ import annotations

import re

from turnroute.router.context import strip_code

__all__ = ["LANGS", "language"]

LANGS = ("en", "es", "fr", "de", "pt", "zh", "ja")      # what `language()` tells apart

_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORDS = {k: frozenset(v) for k, v in {
    "es": ("el", "la", "los", "las", "que", "qué", "por", "para", "una", "esta", "este", "cómo", "dónde",
           "función", "archivo", "explícame", "con", "del", "y", "es", "se", "lo", "puedes", "hay"),
    "fr": ("le", "la", "les", "des", "est", "que", "qui", "quoi", "pourquoi", "comment", "une", "cette", "ce",
           "dans", "du", "et", "fichier", "fonction", "peux", "où", "sur", "pas", "je", "moi"),
    "de": ("der", "die", "das", "und", "ist", "nicht", "wie", "warum", "was", "wo", "ein", "eine", "diese",
           "dieser", "datei", "funktion", "mir", "bitte", "mit", "den", "dem", "auf", "ich", "es"),
    "pt": ("o", "os", "as", "que", "por", "para", "uma", "um", "esta", "este", "essa", "esse", "como", "onde",
           "função", "arquivo", "não", "com", "do", "da", "e", "é", "me", "você", "isso"),
    "en": ("the", "is", "what", "why", "how", "this", "that", "and", "of", "to", "it", "does", "in", "a",
           "file", "function", "please", "can", "you", "where", "which", "me", "do", "with"),
}.items()}
_WORD = re.compile(r"[^\W\d_]+")


def language(text: str) -> str:
    """Best guess among LANGS (script first, then common words)."""
    text = strip_code(text)[:600]
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    words = [w.lower() for w in _WORD.findall(text)]
    best, score = "en", 0.0
    for lang, common in _LATIN_WORDS.items():
        s = sum(1 for w in words if w in common) + (0.5 if lang == "en" else 0.0)
        if lang == "es" and any(ch in text for ch in "ñ¿¡"):
            s += 3
        if lang == "pt" and any(ch in text for ch in "ãõç"):
            s += 2
        if lang == "fr" and any(ch in text for ch in "èêàù"):
            s += 1
        if lang == "de" and any(ch in text for ch in "äöüß"):
            s += 2
        if s > score:
            best, score = lang, s
    return best
