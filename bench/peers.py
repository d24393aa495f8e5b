"""Install, configure and start the benchmark targets (turnroute, claude-code-router, LiteLLM proxy).

Installs go under ``<repo>/.cache/bench/`` (git-ignored):

* ``ccr/``            ``npm install --prefix .cache/bench/ccr @musistudio/claude-code-router``
* ``litellm-venv/``   a separate venv with LiteLLM's proxy extras at the same LiteLLM version as
                      the project venv.  ``litellm[proxy]==X`` pins a ``litellm-proxy==X`` wheel
                      that the package index may not carry; the proxy server itself ships inside
                      the ``litellm`` wheel, so on failure the proxy extra's requirements are
                      installed one by one without it (and with the two companion packages
                      ``litellm-proxy-extras`` / ``litellm-enterprise`` unpinned).

Every target is started as a child in its own session/process group (killed by that id at the
end), with stdout/stderr to a log file in the run directory, loopback only.

    python bench/peers.py install     # install/verify both peers, print versions
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
CCR_DIR = CACHE / "ccr"
CCR_PKG = CCR_DIR / "node_modules" / "@musistudio" / "claude-code-router"
LITELLM_VENV = CACHE / "litellm-venv"
TURNROUTE_BIN = REPO / ".venv" / "bin" / "turnroute"
LOOPBACK = "127.0.0.1"


def _run(cmd: list[str], timeout: float, log: Path | None = None, env: dict | None = None) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f}s: {' '.join(cmd)}"
    except OSError as e:
        return 127, str(e)
    out = (p.stdout or "") + (p.stderr or "")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{out}\n[rc={p.returncode}]\n")
    return p.returncode, out


def _tail(text: str, n: int = 300) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and "is ignored: it is neither" not in ln]
    return " | ".join(lines[-3:])[-n:]


# ----------------------------------------------------------------------------- versions

def node_version() -> str | None:
    node = shutil.which("node")
    if not node:
        return None
    rc, out = _run([node, "--version"], 10)
    return out.strip() if rc == 0 else None


def ccr_version() -> str | None:
    try:
        return json.loads((CCR_PKG / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def litellm_proxy_version() -> str | None:
    py = LITELLM_VENV / "bin" / "python"
    if not py.exists():
        return None
    rc, out = _run([str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"], 30)
    return out.strip() if rc == 0 else None


def project_litellm_version() -> str | None:
    try:
        return md.version("litellm")
    except md.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------- installs

CCR_FALLBACK = "2.0.0"      # the newest release that installs here (3.1.1 needs a package npm lacks)
CCR_NOTE = CACHE / "ccr-install.json"


def ccr_install_note() -> str:
    """What the last install found about claude-code-router's newest release (for the report)."""
    try:
        n = json.loads(CCR_NOTE.read_text())
    except (OSError, ValueError):
        return ""
    if n.get("latest_ok"):
        return f"`latest` ({n.get('latest')}) installed as is"
    return (f"`latest` is {n.get('latest')} and does not install here ({n.get('error')}); "
            f"measured {n.get('installed')} instead")


def ensure_ccr(install: bool = True) -> tuple[bool, str]:
    """(ok, version or reason). Tries npm's `latest` first, then CCR_FALLBACK; records which."""
    if not shutil.which("node") or not shutil.which("npm"):
        return False, "node/npm not found"
    if (CCR_PKG / "dist" / "cli.js").exists():
        return True, ccr_version() or "?"
    if not install:
        return False, "not installed (run: python bench/peers.py install)"
    CCR_DIR.mkdir(parents=True, exist_ok=True)
    _, latest = _run(["npm", "view", "@musistudio/claude-code-router", "version"], 120)
    note = {"latest": latest.strip().splitlines()[-1] if latest.strip() else "?"}
    out = ""
    for spec in ("latest", CCR_FALLBACK):
        rc, out = _run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CCR_DIR),
                        f"@musistudio/claude-code-router@{spec}"], 600, CACHE / "install.log")
        if rc == 0 and (CCR_PKG / "dist" / "cli.js").exists():
            break
        if spec == "latest":
            err = [ln for ln in out.splitlines() if "could not be found" in ln or "404 Not Found" in ln]
            note["error"] = (err[0] if err else _tail(out, 200)).replace("npm error ", "").strip()
    else:
        return False, f"npm install failed (rc={rc}): {_tail(out)}"
    note.update(latest_ok="error" not in note, installed=ccr_version() or "?")
    CCR_NOTE.write_text(json.dumps(note))
    return True, ccr_version() or "?"


def _proxy_requirements(version: str) -> list[str]:
    """The requirements of litellm's ``proxy`` extra, without the unpublished ``litellm-proxy`` pin."""
    reqs = []
    for r in md.requires("litellm") or []:
        name_spec, _, marker = r.partition(";")
        if "extra == 'proxy'" not in marker and 'extra == "proxy"' not in marker:
            continue
        # markers for other Python versions (e.g. >= 3.15) would double-pin: keep those for this one
        m = re.search(r"python_full_version\s*([<>=!]=?)\s*'([\d.*]+)'", marker)
        if m:
            op, ver = m.groups()
            cur = tuple(sys.version_info[:3])
            want = tuple(int(x) for x in ver.replace(".*", "").split("."))
            cmp = {"<": cur < want, "<=": cur <= want, ">": cur > want, ">=": cur >= want,
                   "==": cur[:len(want)] == want, "!=": cur[:len(want)] != want}[op]
            if not cmp:
                continue
        name = re.split(r"[<>=!~\[ ]", name_spec.strip(), 1)[0].lower()
        if name == "litellm-proxy":
            continue
        if name in ("litellm-proxy-extras", "litellm-enterprise"):
            reqs.append(name)
            continue
        reqs.append(name_spec.strip())
    return [f"litellm=={version}"] + reqs


def ensure_litellm_proxy(install: bool = True) -> tuple[bool, str]:
    exe = LITELLM_VENV / "bin" / "litellm"
    py = LITELLM_VENV / "bin" / "python"
    want = project_litellm_version()
    if exe.exists():
        rc, _ = _run([str(py), "-c", "import fastapi, uvicorn, backoff, apscheduler, litellm.proxy.proxy_server"], 120)
        if rc == 0:
            return True, litellm_proxy_version() or "?"
    if not install:
        return False, "not installed (run: python bench/peers.py install)"
    if not want:
        return False, "litellm not installed in the project venv"
    log = CACHE / "install.log"
    if not py.exists():
        rc, out = _run([sys.executable, "-m", "venv", str(LITELLM_VENV)], 300, log)
        if rc != 0:
            return False, f"venv failed: {_tail(out)}"
    pip = [str(py), "-m", "pip", "install", "-q"]
    rc, out = _run(pip + [f"litellm[proxy]=={want}"], 600, log)
    if rc != 0:
        rc, out = _run(pip + _proxy_requirements(want), 600, log)
    if rc != 0:
        return False, f"pip install failed: {_tail(out)}"
    rc, out = _run([str(py), "-c", "import litellm.proxy.proxy_server"], 120)
    if rc != 0:
        return False, f"proxy import failed: {_tail(out)}"
    return True, litellm_proxy_version() or "?"


def turnroute_available() -> tuple[bool, str]:
    if not TURNROUTE_BIN.exists():
        return False, f"{TURNROUTE_BIN} missing"
    rc, out = _run([str(TURNROUTE_BIN), "serve", "--help"], 60)
    if rc != 0 or "--config" not in out:
        return False, f"`turnroute serve --help` failed: {_tail(out, 200)}"
    return True, "ok"


def turnroute_version() -> str:
    rc, sha = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], 10)
    sha = sha.strip() if rc == 0 else "no-commit"
    rc, st = _run(["git", "-C", str(REPO), "status", "--porcelain", "--", "gateway", "router"], 10)
    dirty = "+dirty" if rc == 0 and st.strip() else ""
    try:
        ver = md.version("turnroute")
    except md.PackageNotFoundError:
        ver = "?"
    return f"{ver} ({sha}{dirty})"


# ----------------------------------------------------------------------------- processes

@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    spawned_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 400) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"), n)
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)  # our own child's process group
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=5)


def spawn(name: str, cmd: list[str], workdir: Path, env_extra: dict | None = None,
          cwd: Path | None = None) -> Proc:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    env.update(env_extra or {})
    log = workdir / f"{name}.log"
    fh = log.open("wb")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, cwd=str(cwd or workdir), start_new_session=True)
    fh.close()
    return Proc(name, p, log, t0)


@dataclass
class Target:
    """One thing the load generator talks to."""
    name: str
    label: str
    kind: str                    # "openai" (direct) | "anthropic"
    port: int = 0
    path: str = "/v1/messages"
    headers: dict = field(default_factory=dict)
    proc: Proc | None = None
    start: object = None         # callable(workdir) -> Proc, or None (direct)
    unavailable: str | None = None
    version: str = ""
    notes: str = ""


def start_fake_backend(workdir: Path, port: int) -> Proc:
    return spawn("fake_backend", [sys.executable, str(REPO / "bench" / "fake_backend.py"),
                                  "--port", str(port)], workdir)


def turnroute_config(workdir: Path, name: str, port: int, fake_port: int, route: str) -> Path:
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(f"""\
server: {{host: {LOOPBACK}, port: {port}}}
log: {{path: {workdir / (name + '-requests.jsonl')}}}
backends:
  mlx:
    type: openai              # direct pooled HTTP
    url: http://{LOOPBACK}:{fake_port}/v1
    model: fake-model
    max_output_tokens: 8192
    supports: {{tools: true, images: false, thinking: false, json_schema: false}}
  lmstudio:
    type: litellm             # through LiteLLM lm_studio/ provider
    url: http://{LOOPBACK}:{fake_port}/v1
    model: lm_studio/fake-model
    max_output_tokens: 8192
    supports: {{tools: true, images: false, thinking: false, json_schema: true}}
rules: []
default: {{route: {route}}}
""")
    return cfg


def start_turnroute(workdir: Path, name: str, port: int, fake_port: int, route: str) -> Proc:
    cfg = turnroute_config(workdir, name, port, fake_port, route)
    return spawn(name, [str(TURNROUTE_BIN), "serve", "--config", str(cfg), "--port", str(port)],
                 workdir, cwd=REPO,
                 # PYTHONPATH: an editable install made before router/__init__.py existed maps
                 # `router` as a namespace package; the repo on sys.path makes it a regular one.
                 env_extra={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "TURNROUTE_MODE": "",
                            "PYTHONPATH": str(REPO)})


def start_ccr(workdir: Path, port: int, fake_port: int) -> Proc:
    home = workdir / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    cfg = {
        "LOG": False,                       # most favourable to the peer: no pino log files
        "HOST": LOOPBACK,
        "PORT": port,
        "NON_INTERACTIVE_MODE": True,
        "API_TIMEOUT_MS": 60000,
        "Providers": [{"name": "fake",
                       "api_base_url": f"http://{LOOPBACK}:{fake_port}/v1/chat/completions",
                       "api_key": "sk-fake", "models": ["fake-model"]}],
        "Router": {"default": "fake,fake-model"},
    }
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(cfg, indent=2))
    return spawn("ccr", ["node", str(CCR_PKG / "dist" / "cli.js"), "start"], workdir,
                 env_extra={"HOME": str(home), "CI": "true"})


def start_litellm_proxy(workdir: Path, port: int, fake_port: int, master_key: str) -> Proc:
    cfg = workdir / "litellm-proxy.yaml"
    cfg.write_text(f"""\
model_list:
  - model_name: "*"
    litellm_params:
      model: openai/fake-model
      api_base: http://{LOOPBACK}:{fake_port}/v1
      api_key: sk-fake
litellm_settings:
  drop_params: true
  use_chat_completions_url_for_anthropic_messages: true
""")
    env = {
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # LiteLLM >= 1.8x sends openai/* /v1/messages to the Responses API (/v1/responses) by
        # default; local OpenAI-compatible servers (mlx_lm.server) only have chat/completions.
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
        "HOME": str(workdir / "litellm-home"),
    }
    (workdir / "litellm-home").mkdir(exist_ok=True)
    return spawn("litellm_proxy", [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(cfg),
                                   "--host", LOOPBACK, "--port", str(port)], workdir, env_extra=env)


def new_master_key() -> str:
    return "sk-" + secrets.token_hex(32)


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print(__doc__)
        return 2
    ok1, v1 = ensure_ccr(True)
    print(f"claude-code-router: {'ok ' if ok1 else 'FAILED '}{v1}  node {node_version()}")
    ok2, v2 = ensure_litellm_proxy(True)
    print(f"litellm proxy:      {'ok ' if ok2 else 'FAILED '}{v2}")
    ok3, v3 = turnroute_available()
    print(f"turnroute:          {'ok ' if ok3 else 'not available: '}{v3}")
    return 0 if ok1 and ok2 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
