"""Installed, not only cloned: a wheel in a clean venv serves the shipped config from the package,
and `turnroute init` gives the user an editable copy that `serve` then uses."""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def serve_health(exe: Path, env: dict, cwd: Path) -> dict:
    port = free_port()
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/hello", timeout=60, alive=lambda: proc.poll() is None)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=15, trust_env=False).json()
        assert httpx.get(f"http://127.0.0.1:{port}/ui", timeout=5, trust_env=False).status_code == 200
        return health
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.mark.slow
def test_a_wheel_in_a_clean_venv_serves_the_shipped_config_and_init_copies_it(tmp_path):
    src = tmp_path / "src"      # build from a copy: the checkout gets no build/ or egg-info
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("gateway", "router", "config"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # Built as `pip install .` would (isolated, setuptools from the package index the suite installs from).
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", src])
    wheel = next((tmp_path / "dist").glob("turnroute-*.whl"))

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", "--without-pip", venv])
    # Dependencies come from the test venv's site-packages (added as a plain path, so its editable
    # turnroute finder is not loaded): only the wheel itself is new.
    purelib = next(venv.glob("lib/python*/site-packages"))
    (purelib / "test-venv-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
         "-q", wheel])

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "HF_HUB_OFFLINE": "1"}
    where = run([venv / "bin" / "python", "-c", "import turnroute.gateway as g; print(g.__file__)"],
                env=env, cwd=home).stdout.strip()
    assert where.startswith(str(purelib)), where

    exe = venv / "bin" / "turnroute"
    shipped = serve_health(exe, env, home)["config"]
    assert shipped == str(purelib / "turnroute" / "config" / "turnroute.yaml")

    out = run([exe, "init"], env=env, cwd=home).stdout
    user_copy = tmp_path / "xdg" / "turnroute" / "turnroute.yaml"
    assert str(user_copy) in out and user_copy.read_bytes() == Path(shipped).read_bytes()
    assert subprocess.run([exe, "init"], env=env, cwd=home, capture_output=True).returncode == 1
    assert serve_health(exe, env, home)["config"] == str(user_copy)
    assert os.access(user_copy, os.W_OK)
