"""The `xpnet` command (this issue: `xpnet backends`; exit codes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xpnet.cli import main


def test_backends_prints_the_report(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("backend")
    assert any(line.startswith("numpy ") and " yes " in line for line in out.splitlines())
    assert "auto -> " in out


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "usage: xpnet" in capsys.readouterr().err


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "xpnet", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("xpnet ")
