"""The pinned Claude Code CLI installs and runs."""

import subprocess

from tests.support.claude_code import CLAUDE_CODE_VERSION, claude_env, ensure_claude_code


def test_claude_version(tmp_path):
    claude = ensure_claude_code()
    assert claude.exists()
    r = subprocess.run([str(claude), "--version"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL,
                       env=claude_env("http://127.0.0.1:9", home=tmp_path))
    assert r.returncode == 0, r.stderr
    assert CLAUDE_CODE_VERSION in r.stdout
    # idempotent: a second call finds the same install without running npm
    assert ensure_claude_code() == claude
