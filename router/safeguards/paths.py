"""Which paths are secrets, safety switches or build output (built-in knowledge of the rules)."""

from __future__ import annotations

import posixpath
import re
from fnmatch import fnmatchcase

__all__ = ["is_secret_path", "is_safety_path", "is_build_output", "DEFAULT_BUILD_OUTPUT", "TOKEN_RE",
           "HARMLESS_WRITES", "TEMP_DIRS"]

DEFAULT_BUILD_OUTPUT: tuple[str, ...] = (
    "build", "dist", "out", "target", "node_modules", ".venv", "venv", "__pycache__", ".pytest_cache",
    ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".cache", "coverage", "htmlcov", ".coverage", ".next",
    ".nuxt", ".parcel-cache", ".turbo", ".gradle", "*.egg-info", "*.pyc", "*.o", "*.class",
)
HARMLESS_WRITES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
TEMP_DIRS = ("/tmp", "/var/tmp")

_SECRET_NAMES = re.compile(
    r"^(?:\.env(?:\.(?!example$|sample$|template$|dist$|defaults?$)[\w.-]+)?|\.netrc|_netrc|\.git-credentials|"
    r"\.pgpass|\.pypirc|\.npmrc|\.htpasswd|id_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?|"
    r".*\.(?:pem|p12|pfx|key|keystore|jks)|credentials(?:\.json)?|secrets?\.(?:ya?ml|json|toml)|"
    r"\.?vault[-_]?(?:token|pass(?:word)?)|token\.json)$", re.I)
_SECRET_DIRS = ("/.ssh/", "/.gnupg/", "/.aws/", "/.kube/", "/.docker/", "/.config/gcloud/", "/.azure/",
                "/.password-store/", "/etc/shadow", "/etc/sudoers", "/.claude/.credentials")
_SAFETY = re.compile(r"(?:/\.claude/settings(?:\.local)?\.json|/\.claude\.json|/\.git/hooks(?:/|$)|"
                     r"/\.claude/hooks(?:/|$)|/etc/sudoers|/etc/selinux/|/etc/apparmor)")

# Credentials written out on a command line (they end up in shell history and process lists).
TOKEN_RE = re.compile(
    r"(?:\b(?:ghp|gho|ghs|ghu|ghr|github_pat)_[A-Za-z0-9_]{20,}|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{24,}|"
    r"\bAKIA[0-9A-Z]{16}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bglpat-[A-Za-z0-9_-]{20,}|"
    r"\bAIza[0-9A-Za-z_-]{35}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----|"
    r"authorization:\s*(?:bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}|"
    r"--(?:password|passwd|token|api[-_]?key|secret|client[-_]secret)[= ]\S{6,}|"
    r"\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY)=\S{8,}|"
    r"://[^/\s:@]+:[^/\s@]{6,}@)", re.I)


def is_secret_path(resolved: str) -> bool:
    """A resolved absolute path that holds credentials (keys, tokens, .env files)."""
    name = posixpath.basename(resolved)
    if _SECRET_NAMES.match(name):
        return not name.endswith(".pub")   # public keys are fine to read
    p = resolved + ("/" if not resolved.endswith("/") else "")
    return any(d in p for d in _SECRET_DIRS)


def is_safety_path(resolved: str) -> bool:
    """Claude Code's own permission/hook settings, git hooks, sudo/SELinux/AppArmor config."""
    return bool(_SAFETY.search(resolved))


def is_build_output(resolved: str, trusted_root: str, names: tuple[str, ...]) -> bool:
    """True when the path is (inside) a build-output directory under the trusted root, e.g.
    `<root>/build`, `<root>/pkg/node_modules/x`, `<root>/foo.egg-info`."""
    rel = posixpath.relpath(resolved, trusted_root)
    if rel == "." or rel.startswith(".."):
        return False
    return any(fnmatchcase(part, n) for part in rel.split("/") for n in names)
