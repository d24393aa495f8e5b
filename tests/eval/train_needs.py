"""Train the act classifier and write router/needs_weights.py.

    .venv/bin/python -m tests.eval.train_needs            # writes the shipped weights
    .venv/bin/python -m tests.eval.train_needs --check    # retrain in memory, report, write nothing
    .venv/bin/python -m tests.eval.train_needs --cv       # model selection: cross-validation over
                                                          # the session files (~10 min)

Training data: the prompts of the training documents' rows (corpus.yaml, sessions/*.yaml; each
with its `act`, `look` where the author's ask needs the workspace, and the situation the router
reads off the request the turn makes), the phrase lists in tests/eval/phrases/ and the
templates. Held-out rows are dropped before anything else happens, so they can never influence
the weights. Multinomial logistic regression over router.needs_model.features, AdaGrad, L2, the
weights of five shuffle orders averaged; deterministic (fixed seeds, sorted data). Features,
settings and the router's floors were chosen with --cv, never on the held-out split.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
import sys
from pathlib import Path

import yaml

from turnroute.router.context import references
from turnroute.router.needs import classifier_text
from turnroute.router.needs_model import ACTS, Model, encode, features
from tests.eval.corpus import SESSIONS, load, training_docs, training_rows

PHRASES = Path(__file__).with_name("phrases")          # *.yaml: act → language → prompts
TEMPLATES = Path(__file__).with_name("train_templates.yaml")
PER_TEMPLATE = 4
OUT = Path(__file__).resolve().parents[2] / "router" / "needs_weights.py"
EPOCHS = 5
RATE = 0.1
L2 = 1e-4
SEEDS = (7, 11, 13, 17, 19)   # one model per shuffle order, averaged: steadier than any one of them
MIN_WEIGHT = 0.1
ROW_WEIGHT = 3                # a written turn counts three times: it is how people type, phrase lists are not quite
                              # (a document's `weight:` says otherwise: the retired held-out splits say 5)
MIN_COUNT = 3                 # n-grams seen in fewer training prompts are left out
SCALE = 100


def examples(*, exclude: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...], str]]:
    """(classifier text, situation tags, act) triples: the training documents' rows (but those of the session files
    named in `exclude`), the phrase lists and the expanded templates."""
    weighted = [(pair, int(doc.get("weight", ROW_WEIGHT)))
                for doc in training_docs(exclude=exclude) for pair in training_rows(doc)]
    data = [pair for pair, _ in weighted]
    for path in sorted(PHRASES.glob("*.yaml")):
        for act, by_lang in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            assert act in ACTS, (path.name, act)
            for items in by_lang.values():
                data += [(classifier_text(str(t), references(str(t))), (), act) for t in items]
    doc = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    for act, by_lang in doc["templates"].items():
        assert act in ACTS, act
        for lang, templates in by_lang.items():
            fill = doc["fill"][lang]
            for i, tpl in enumerate(templates):
                slot = next((k for k in fill if "{" + k + "}" in tpl), None)
                values = fill[slot] if slot else [""]
                for j in range(min(PER_TEMPLATE, len(values))):
                    text = tpl.format(**{slot: values[(i + j) % len(values)]}) if slot else tpl
                    data.append((classifier_text(text, references(text)), (), act))
    return sorted(set(data)) + sorted(pair for pair, w in weighted for _ in range(w - 1))


def train(data: list[tuple[str, tuple[str, ...], str]], *, seed: int = 7) -> Model:
    k = len(ACTS)
    grams = [features(t, tags) for t, tags, _ in data]
    counts = Counter(g for gs in grams for g in gs)
    rows = [(sorted(g for g in gs if counts[g] >= MIN_COUNT), ACTS.index(a)) for gs, (_, _, a) in zip(grams, data)]
    w: dict[str, list[float]] = {}
    g2: dict[str, list[float]] = {}
    bias = [0.0] * k
    bias_g2 = [1e-8] * k
    rng = random.Random(seed)
    for _ in range(EPOCHS):
        rng.shuffle(rows)
        for feats, y in rows:
            z = bias[:]
            for f in feats:
                wf = w.get(f)
                if wf is not None:
                    for i in range(k):
                        z[i] += wf[i]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            s = sum(e)
            grad = [e[i] / s - (1.0 if i == y else 0.0) for i in range(k)]
            for i in range(k):
                bias_g2[i] += grad[i] ** 2
                bias[i] -= RATE * grad[i] / math.sqrt(bias_g2[i])
            for f in feats:
                wf = w.setdefault(f, [0.0] * k)
                gf = g2.setdefault(f, [1e-8] * k)
                for i in range(k):
                    gi = grad[i] + L2 * wf[i]
                    gf[i] += gi * gi
                    wf[i] -= RATE * gi / math.sqrt(gf[i])
    keep = {f: v for f, v in w.items() if max(abs(x) for x in v) >= MIN_WEIGHT}
    cols = tuple({f: v[i] for f, v in keep.items() if abs(v[i]) >= MIN_WEIGHT} for i in range(k))
    return Model.from_columns(ACTS, bias, cols)


def train_averaged(data: list[tuple[str, tuple[str, ...], str]], seeds: tuple[int, ...] = SEEDS) -> Model:
    """The mean of one model per seed (for a linear model, the mean of the scores)."""
    models = [train(data, seed=s) for s in seeds]
    columns = [m.columns() for m in models]
    k = len(ACTS)
    cols = []
    for i in range(k):
        col: dict[str, float] = {}
        for m in columns:
            for g, v in m[i].items():
                col[g] = col.get(g, 0.0) + v / len(models)
        cols.append({g: v for g, v in col.items() if abs(v) >= MIN_WEIGHT})
    return Model.from_columns(ACTS, [sum(m.bias[i] for m in models) / len(models) for i in range(k)], cols)


def write(model: Model, path: Path = OUT) -> None:
    """A module of constants: the n-grams as one string, the weights as base64 (int16 × SCALE);
    unmarshalled from its .pyc and decoded in a few milliseconds."""
    doc = encode(model, SCALE)
    path.write_text('"""Generated by tests/eval/train_needs.py from the training documents — do not edit; '
                    'retrain instead."""\n\n'
                    f"CLASSES = {doc['classes']!r}\nBIAS = {doc['bias']!r}\nSCALE = {doc['scale']!r}\n"
                    f"GRAMS = {doc['grams']!r}\nWEIGHTS = {doc['weights']!r}\n", encoding="utf-8")


def cross_validate(folds: int = 5, *, seeds: tuple[int, ...] = (7,)) -> str:
    """Model selection without the held-out split: for each fold of the session files, train on
    everything else and route that fold's turns; report the pooled result. Each session file was
    written by its own author around its own codebase, so a fold is unseen phrasing, as the
    held-out split is."""
    from unittest import mock

    from turnroute.router.evaluate import score, summary, turns_of
    from tests.eval.test_eval import shipped

    names = sorted(p.name for p in SESSIONS.glob("*.yaml"))
    outcomes = []
    for i in range(folds):
        fold = tuple(names[i::folds])
        model = train_averaged(examples(exclude=fold), seeds)
        with mock.patch("turnroute.router.needs.load_model", lambda: model):
            outcomes += score([t for n in fold for t in turns_of(load(SESSIONS / n))], shipped())
    s = summary(outcomes)
    return (f"cross-validation over {len(names)} session files, {folds} folds: {100 * s['accuracy']:.1f} % of "
            f"{s['n']}, starved {len(s['starved'])}\n"
            "  by label: " + " ".join(f"{k} {100 * r / n:.0f}" for k, (r, n) in s["by_label"].items()) + "\n"
            "  by lang:  " + " ".join(f"{k} {100 * r / n:.0f}" for k, (r, n) in s["by_lang"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="train and report training accuracy, write nothing")
    ap.add_argument("--cv", action="store_true", help="cross-validate over the session files, write nothing")
    args = ap.parse_args(argv)
    if args.cv:
        print(cross_validate())
        return 0
    data = examples()
    model = train_averaged(data)
    right = sum(model.predict(t, tags)[0] == a for t, tags, a in data)
    print(f"{len(data)} training examples, {len(model.index)} n-grams kept, "
          f"training accuracy {right}/{len(data)}", file=sys.stderr)
    if not args.check:
        write(model)
        print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
