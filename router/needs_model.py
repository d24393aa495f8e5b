"""A small multilingual classifier of what a prompt asks for: change, search, look, ask or general.

`look` is a question only the workspace can answer ("what does invoice_repo.go return there?"
after a grep that merely listed it); `ask` one the conversation can. The classifier reads the
prompt's words and its situation (router.needs.situation), since the same words ask different
things after a Read and after a chat.

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

__all__ = ["ACTS", "Model", "ngrams", "features", "load_model", "encode", "decode"]

ACTS = ("change", "search", "look", "ask", "general")
MAX_CHARS = 300
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_SENTENCE = re.compile(r"[.!?;:。！？；：\n]\s+|[。！？]")
_PUNCT = "?.!,;:¿¡？。！、"


def ngrams(text: str) -> set[str]:
    """The features of a prompt: character 2–3-grams of the normalised text, its words, pairs of
    neighbouring words, its first word and first two words, the first word of every later
    sentence (where a request after a remark starts), its last two characters (where CJK
    imperatives live: …して, …吧), whether it asks (? or ？), and for CJK text the 2–3-grams of
    the text without spaces (prefixed "c:").

    The caller masks references (file names, identifiers) first: the model must learn how people
    ask, not which files appeared in its training set.
    """
    low = _DIGITS.sub("0", text[:MAX_CHARS].lower())
    t = _SPACE.sub(" ", low).strip()
    bare = t.rstrip("?.!。！？ ")
    out: set[str] = {"q:" + str(t.endswith(("?", "？")) or t.startswith("¿")), "end:" + bare[-2:]}
    words = [w for w in (w.strip(_PUNCT) for w in t.split()) if w]
    if words:
        out.add("w0:" + words[0])
        if len(words) > 1:
            out.add("w01:" + words[0] + " " + words[1])
    for sentence in _SENTENCE.split(low)[1:]:        # "… broken on my mac. revert that one please"
        first = next((w for w in (w.strip(_PUNCT) for w in sentence.split()) if w), None)
        if first:
            out.add("s0:" + first)
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


def features(text: str, tags: Sequence[str] = ()) -> set[str]:
    """The n-grams of `text`, the situation tags (router.needs.situation), and each tag paired
    with each word of the prompt and with whether it asks: "why?" after a Read is a question
    about the code, after a general answer a general one."""
    out = ngrams(text)
    if tags:
        out.update(tags)
        anchors = [g for g in out if g.startswith(("w0:", "q:", "w:"))]
        out.update(t + "&" + a for t in tags for a in anchors)
    return out


@dataclass(frozen=True)
class Model:
    """A linear model: a row per n-gram (`index`), one column of weights per class, in units of
    1/`scale`.

    One dict for every class (not a dict per class) and weights in flat arrays: loading the
    shipped ~78k n-grams is one split and one dict build, and scoring is one C-level map+sum per
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

    def scores(self, text: str, tags: Sequence[str] = ()) -> dict[str, float]:
        """Class probabilities (softmax over the linear scores) of `text` in a situation `tags`."""
        rows = [i for i in map(self.index.get, features(text, tags)) if i is not None]
        z = [(b + sum(map(col.__getitem__, rows))) / self.scale for b, col in zip(self.bias, self.cols)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        s = sum(e)
        return {c: e[i] / s for i, c in enumerate(self.classes)}

    def predict(self, text: str, tags: Sequence[str] = ()) -> tuple[str, float, dict[str, float]]:
        p = self.scores(text, tags)
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
