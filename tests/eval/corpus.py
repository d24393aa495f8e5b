"""The labelled corpus (tests/eval/corpus.yaml), loaded once, and its training rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from turnroute.router.context import references
from turnroute.router.needs import classifier_text
from turnroute.router.evaluate import LANGS

PATH = Path(__file__).with_name("corpus.yaml")
CORPUS: dict = yaml.safe_load(PATH.read_text(encoding="utf-8"))


def training_rows(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(prompt as the classifier sees it, act) for every row not marked heldout."""
    for row in doc["rows"]:
        if row.get("heldout"):
            continue
        for lang in LANGS:
            if lang in row:
                prompt = str(row[lang])
                yield classifier_text(prompt, references(prompt)), row["act"]
