"""turnroute.router.yamlsrc: plain containers that remember lines; errors that name file:line."""

from __future__ import annotations

import pytest

from turnroute.router.yamlsrc import ConfigError, LineDict, LineList, line_of, load_yaml

TEXT = """\
# comment
server:
  port: 8400
rules:
  - name: a
    when: {turn: [prompt, title]}
    route: mlx
  - name: b
    route: lmstudio
base: &base {route: mlx}
default:
  <<: *base
  route: lmstudio
"""


def test_lines_are_remembered():
    doc = load_yaml(TEXT, "c.yaml")
    assert isinstance(doc, LineDict) and isinstance(doc["rules"], LineList)
    assert doc.line == 2 and doc.key_lines["server"] == 2 and doc.key_lines["rules"] == 4
    rules = doc["rules"]
    assert rules.item_lines == [5, 8] and rules[1].line == 8
    assert rules[0].key_lines == {"name": 5, "when": 6, "route": 7}
    assert rules[0]["when"]["turn"].line == 6
    assert line_of(rules, 1) == 8 and line_of(rules[0], "route") == 7 and line_of(rules[0]) == 5
    assert line_of({"plain": 1}, "plain") is None


def test_plain_values_and_merge_keys():
    doc = load_yaml(TEXT, "c.yaml")
    assert doc["server"] == {"port": 8400}
    assert doc["default"] == {"route": "lmstudio"}               # explicit key overrides the merge
    assert doc["rules"][0]["when"] == {"turn": ["prompt", "title"]}
    assert load_yaml("", "e.yaml") is None
    assert load_yaml("- 1\n- x\n", "l.yaml") == [1, "x"]


@pytest.mark.parametrize("text,line,fragment", [
    ("a: 1\nb: [1, 2\nc: 3\n", 3, "YAML syntax error"),
    ("a:\n  b: 1\n c: 2\n", 3, "YAML syntax error"),
    ("rules:\n  - name: a\n    name: b\n", 3, "duplicate key 'name'"),
    ("a: \"unterminated\n", 2, "YAML syntax error"),
    ("a: *nope\n", 1, "YAML syntax error"),
])
def test_errors_name_file_and_line(text, line, fragment):
    with pytest.raises(ConfigError) as e:
        load_yaml(text, "conf/turnroute.yaml")
    assert e.value.source == "conf/turnroute.yaml" and e.value.line == line, str(e.value)
    assert str(e.value).startswith(f"conf/turnroute.yaml:{line}: ") and fragment in str(e.value)


def test_config_error_without_line():
    e = ConfigError("boom", "x.yaml", None)
    assert str(e) == "x.yaml: boom" and e.message == "boom" and isinstance(e, ValueError)


def test_unsafe_tags_rejected():
    with pytest.raises(ConfigError):
        load_yaml("a: !!python/object/apply:os.system ['true']\n", "x.yaml")
