"""How turnroute is packaged: pure layers stay pure, and an installed wheel stands on its own.

Both run in fresh interpreters (a module imported by another test could hide a stray import).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import httpx

from tests.support.net import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "starlette", "uvicorn", "aiohttp", "httpx", "litellm", "openai")


def test_protocol_and_router_import_no_io_library(tmp_path):
    code = ("import sys, turnroute.gateway.protocol, turnroute.router; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    # …and the protocol layer imports nothing from the router above it.
    code = "import sys, turnroute.gateway.protocol; print([m for m in sys.modules if m.startswith('turnroute.router')])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_wheel_in_a_clean_venv_serves_the_shipped_config(tmp_path):
    """`pip install` of the built wheel (no checkout on sys.path): the shipped config travels in
    the package, `import gateway`/`import router` stay free, and `turnroute serve` runs."""
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("turnroute-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # Dependencies come from the test environment's site-packages (no network at test time);
    # a plain path entry does not run that folder's .pth files, so the editable checkout stays out.
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-3000:]
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "TURNROUTE_LOG": str(tmp_path / "requests.jsonl")}
    probe = subprocess.run([str(py), "-c", "import turnroute.gateway.edge.app, importlib.util as u; "
                            "print(u.find_spec('gateway'), u.find_spec('router'), turnroute.gateway.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    free_gateway, free_router, where = probe.stdout.split()
    assert (free_gateway, free_router) == ("None", "None")
    assert where.startswith(str(env_dir)) and str(REPO) not in where
    port = free_port()
    proc = subprocess.Popen([str(env_dir / "bin" / "turnroute"), "serve", "--port", str(port), "--no-reload"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/hello", timeout=60, alive=lambda: proc.poll() is None)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).json()
        assert health["config"].startswith(str(env_dir)) and health["config"].endswith("turnroute/config/turnroute.yaml")
        assert set(health["backends"]) == {"mlx", "lmstudio"}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
