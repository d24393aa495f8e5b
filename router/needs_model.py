"""A small multilingual classifier of what a prompt asks for: change, search, ask or general.

Why a model at all: structure (paths, identifiers, fences, turn position) is language-independent
but cannot tell "ok, ship it" from "ok, why?" or "引き続き修正して" from "この関数の意味は？".
A linear model over character n-grams can, in any of the seven languages it was trained on, with
no tokenizer, no network and no download. It runs only where structure leaves the question open.

The weights (`router/needs_weights.py`, a generated module: importing it is the whole load, no
file I/O here) are written by `tests/eval/train_needs.py` from the training split of the labelled
corpus and its phrase list; the held-out split is never shown to it.
Format: DATA = a JSON string {"classes", "scale", "bias", "cols": [{ngram: weight} per class]}.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat

__all__ = ["ACTS", "Model", "ngrams", "load_model", "from_doc"]

ACTS = ("change", "search", "ask", "general")
MAX_CHARS = 300
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def ngrams(text: str) -> set[str]:
    """Character 2–4-grams of the normalised text, its words, its first word, its last two
    characters (where CJK imperatives live: …して, …吧) and whether it asks (? or ？).

    The caller masks references (file names, identifiers) first: the model must learn how people
    ask, not which files appeared in its training set.
    """
    t = _SPACE.sub(" ", _DIGITS.sub("0", text[:MAX_CHARS].lower())).strip()
    bare = t.rstrip("?.!。！？ ")
    out: set[str] = {"q:" + str(t.endswith(("?", "？")) or t.startswith("¿")), "end:" + bare[-2:]}
    words = [w.strip("?.!,;:¿¡？。！、") for w in t.split()]
    if words:
        out.add("w0:" + words[0])
    out.update("w:" + w for w in words)
    t = f" {t} "
    n = len(t)
    for k in (2, 3, 4):
        for i in range(n - k + 1):
            out.add(t[i:i + k])
    if _CJK.search(t):
        out.update(ch for ch in t if _CJK.match(ch))
    return out


@dataclass(frozen=True)
class Model:
    """A linear model: one sparse column of weights per class, in units of 1/`scale`.

    Shipped weights are integers (scale 100) kept exactly as json.loads returns them, so loading
    is one parse with no per-entry work; scoring is one C-level map+sum per class.
    """

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    cols: tuple[dict, ...]        # per class: n-gram → weight
    scale: float = 1.0

    def scores(self, text: str) -> dict[str, float]:
        """Class probabilities (softmax over the linear scores)."""
        grams = ngrams(text)
        z = [(b + sum(map(col.get, grams, repeat(0)))) / self.scale for b, col in zip(self.bias, self.cols)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        s = sum(e)
        return {c: e[i] / s for i, c in enumerate(self.classes)}

    def predict(self, text: str) -> tuple[str, float, dict[str, float]]:
        p = self.scores(text)
        best = max(p, key=p.__getitem__)
        return best, p[best], p


def from_doc(doc: dict) -> Model:
    """Model from the weights document written by tests/eval/train_needs.py."""
    return Model(tuple(doc["classes"]), tuple(doc["bias"]), tuple(doc["cols"]), float(doc["scale"]))


@lru_cache(maxsize=1)
def load_model() -> Model:
    """The shipped weights, loaded once per process (on the first prompt, not at start-up)."""
    from turnroute.router.needs_weights import DATA

    return from_doc(json.loads(DATA))
