"""The user guide: the reference page keeps up with the code, and the site builds without warnings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import click
import pytest

from celeriac.cli.main import cli
from celeriac.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "guide" / "settings.md").read_text()


def test_every_setting_celeriac_reads_is_listed():
    missing = [name for name in DEFAULTS if f"`{name}`" not in REFERENCE]
    assert missing == []


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_of_every_command_is_listed(command):
    options = [max(p.opts, key=len) for p in cli.commands[command].params if isinstance(p, click.Option)]
    assert f"`{command}`" in REFERENCE
    assert [opt for opt in options if f"`{opt}`" not in REFERENCE and f"/{opt}`" not in REFERENCE] == []


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason='needs the docs extra: pip install -e ".[docs]"')
def test_the_guide_builds_strictly(tmp_path):
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})
    assert build.returncode == 0, build.stderr[-3000:]
    assert (tmp_path / "guide" / "frameworks" / "index.html").exists()
