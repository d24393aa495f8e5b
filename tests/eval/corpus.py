"""The labelled turns: training documents (tests/eval/corpus.yaml and tests/eval/sessions/*.yaml)
and the held-out split (tests/eval/heldout.yaml).

Every document has the same format (files, contexts, rows; see corpus.yaml's header). The
sessions/ documents were each written by a separate author around a codebase of their own, in
the register developers really type in; cross-validation over them chose the classifier's
settings (tests/eval/train_needs.py --cv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from turnroute.router.evaluate import turns_of
from turnroute.router.needs import read

HERE = Path(__file__).parent
PATH = HERE / "corpus.yaml"
SESSIONS = HERE / "sessions"
HELDOUT_PATH = HERE / "heldout.yaml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


CORPUS: dict = load(PATH)


def training_paths(*, exclude: Iterable[str] = ()) -> list[Path]:
    skip = set(exclude)
    return [PATH] + [p for p in sorted(SESSIONS.glob("*.yaml")) if p.name not in skip]


def training_docs(*, exclude: Iterable[str] = ()) -> list[dict]:
    return [CORPUS] + [load(p) for p in training_paths(exclude=exclude)[1:]]


def held_out() -> dict:
    """The held-out document. Not loaded at import: the training script imports this module and
    must never read it."""
    return load(HELDOUT_PATH)


def training_rows(doc: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(prompt as the classifier sees it, the situation it sees it in, act) for every turn of
    every row not marked heldout: read by the router's own code from the request the turn makes."""
    for t in turns_of({**doc, "rows": [r for r in doc["rows"] if not r.get("heldout")]}):
        messages = t.body["messages"]
        r = read(t.prompt, messages, len(messages) - 1)
        yield r.text, r.tags, "look" if t.act == "ask" and t.label == "workspace" else t.act
