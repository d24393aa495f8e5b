"""A small multilingual classifier of what a prompt asks for: change, search, ask or general.

Why a model at all: structure (paths, identifiers, fences, turn position) is language-independent
but cannot tell "ok, ship it" from "ok, why?" or "引き続き修正して" from "この関数の意味は？".
A linear model over character n-grams and word pairs can, in any of the seven languages it was
trained on, with no tokenizer, no network and no download. It runs only where structure leaves
the question open.

The weights (`router/needs_weights.py`, a generated module: importing it is the whole load, no
file I/O here) are written by `tests/eval/train_needs.py` from the training documents and phrase
lists; the held-out split is never shown to it. Format: see `encode`.
"""

from __future__ import annotations

import base64
import math
import re
import sys
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

__all__ = ["ACTS", "Model", "ngrams", "load_model", "encode", "decode"]

ACTS = ("change", "search", "ask", "general")
MAX_CHARS = 300
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def ngrams(text: str) -> set[str]:
    """The features of a prompt: character 2–3-grams of the normalised text, its words, pairs of
    neighbouring words, its first word and first two words, its last two characters (where CJK
    imperatives live: …して, …吧), whether it asks (? or ？), and for CJK text the 2–3-grams of
    the text without spaces (prefixed "c:").

    The caller masks references (file names, identifiers) first: the model must learn how people
    ask, not which files appeared in its training set.
    """
    t = _SPACE.sub(" ", _DIGITS.sub("0", text[:MAX_CHARS].lower())).strip()
    bare = t.rstrip("?.!。！？ ")
    out: set[str] = {"q:" + str(t.endswith(("?", "？")) or t.startswith("¿")), "end:" + bare[-2:]}
    words = [w for w in (w.strip("?.!,;:¿¡？。！、") for w in t.split()) if w]
    if words:
        out.add("w0:" + words[0])
        if len(words) > 1:
            out.add("w01:" + words[0] + " " + words[1])
    out.update("w:" + w for w in words)
    out.update("b:" + a + " " + b for a, b in zip(words, words[1:]))
    t = f" {t} "
    n = len(t)
    for k in (2, 3):
        for i in range(n - k + 1):
            out.add(t[i:i + k])
    if _CJK.search(t):
        out.update(ch for ch in t if _CJK.match(ch))
        s = _SPACE.sub("", t)
        for k in (2, 3):
            out.update("c:" + s[i:i + k] for i in range(len(s) - k + 1))
    return out


@dataclass(frozen=True)
class Model:
    """A linear model: a row per n-gram (`index`), one column of weights per class, in units of
    1/`scale`.

    One dict for every class (not a dict per class) and weights in flat arrays: loading the
    shipped ~48k n-grams is one split and one dict build, and scoring is one C-level map+sum per
    class over the rows the prompt hits.
    """

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    index: dict[str, int]         # n-gram → row
    cols: tuple[Sequence[float], ...]   # per class: weight per row
    scale: float = 1.0

    @classmethod
    def from_columns(cls, classes: Sequence[str], bias: Sequence[float], columns: Sequence[dict[str, float]],
                     scale: float = 1.0) -> "Model":
        """From one {n-gram: weight} dict per class (what training produces)."""
        grams = sorted(set().union(*columns))
        index = {g: i for i, g in enumerate(grams)}
        cols = tuple(array("d", (col.get(g, 0.0) for g in grams)) for col in columns)
        return cls(tuple(classes), tuple(bias), index, cols, scale)

    def columns(self) -> list[dict[str, float]]:
        """One {n-gram: weight} dict per class, zero weights left out."""
        return [{g: col[i] for g, i in self.index.items() if col[i]} for col in self.cols]

    def scores(self, text: str) -> dict[str, float]:
        """Class probabilities (softmax over the linear scores)."""
        rows = [i for i in map(self.index.get, ngrams(text)) if i is not None]
        z = [(b + sum(map(col.__getitem__, rows))) / self.scale for b, col in zip(self.bias, self.cols)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        s = sum(e)
        return {c: e[i] / s for i, c in enumerate(self.classes)}

    def predict(self, text: str) -> tuple[str, float, dict[str, float]]:
        p = self.scores(text)
        best = max(p, key=p.__getitem__)
        return best, p[best], p


def encode(model: Model, scale: int) -> dict:
    """The shipped form: n-grams as one newline-joined string (in row order), weights × `scale` as
    little-endian int16, class after class, in base64."""
    grams = sorted(model.index, key=model.index.__getitem__)
    weights = array("h", (max(-32768, min(32767, round(col[model.index[g]] * scale)))
                          for col in model.cols for g in grams))
    if sys.byteorder == "big":
        weights.byteswap()
    return {"classes": list(model.classes), "bias": [round(b * scale) for b in model.bias], "scale": scale,
            "grams": "\n".join(grams), "weights": base64.b64encode(weights.tobytes()).decode("ascii")}


def decode(doc: dict) -> Model:
    """Model from `encode`'s form (what router/needs_weights.py holds)."""
    grams = doc["grams"].split("\n")
    weights = array("h")
    weights.frombytes(base64.b64decode(doc["weights"]))
    if sys.byteorder == "big":
        weights.byteswap()
    n = len(grams)
    cols = tuple(weights[i * n:(i + 1) * n] for i in range(len(doc["classes"])))
    return Model(tuple(doc["classes"]), tuple(doc["bias"]), dict(zip(grams, range(n))), cols, float(doc["scale"]))


@lru_cache(maxsize=1)
def load_model() -> Model:
    """The shipped weights, loaded once per process (on the first prompt, not at start-up)."""
    from turnroute.router import needs_weights as w

    return decode({"classes": w.CLASSES, "bias": w.BIAS, "scale": w.SCALE, "grams": w.GRAMS, "weights": w.WEIGHTS})
