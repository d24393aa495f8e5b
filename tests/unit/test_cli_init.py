"""`turnroute init`: an editable copy of the shipped config where `serve` (and `check`) look first."""

from __future__ import annotations

from turnroute.gateway.cli.main import main
from turnroute.gateway.paths import shipped_config


def test_init_writes_the_shipped_config_once_and_serve_finds_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TURNROUTE_CONFIG", raising=False)
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith(f"{shipped_config()}: OK")

    assert main(["init"]) == 0
    copy = tmp_path / "xdg" / "turnroute" / "turnroute.yaml"
    assert str(copy) in capsys.readouterr().out
    assert copy.read_bytes() == shipped_config().read_bytes()

    copy.write_text(copy.read_text().replace("port: 8400", "port: 8411"))
    assert main(["init"]) == 1                       # an edited copy is never overwritten
    assert "already exists" in capsys.readouterr().out
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith(f"{copy}: OK")
    assert "port: 8411" in copy.read_text()
