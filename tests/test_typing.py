"""Typed calls: mypy --strict sees the task's signature through ``.delay`` and the result type."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import celeriac

EXAMPLE = '''
from celeriac import Celery

app = Celery("typed")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


@app.task(bind=True, max_retries=3)
def charge(self: object, order_id: int) -> str:
    return str(order_id)


add.delay("x", "y")
reveal_type(add.delay(1, 2).get())
reveal_type(fetch.delay("u").get())
charge.delay("order")
reveal_type(charge.delay(7).get())
'''


def test_mypy_checks_delay_arguments_and_result_types(tmp_path):
    path = tmp_path / "typed_example.py"
    path.write_text(textwrap.dedent(EXAMPLE))
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
                         capture_output=True, text=True, cwd=tmp_path)
    out = run.stdout
    assert 'Argument 1 to "delay" of "Task" has incompatible type "str"; expected "int"' in out
    assert 'Argument 2 to "delay" of "Task" has incompatible type "str"; expected "int"' in out
    assert 'Revealed type is "int"' in out
    assert 'Revealed type is "bytes"' in out
    assert out.count('incompatible type "str"; expected "int"') == 3  # the bound task's self is not an argument
    assert 'Revealed type is "str"' in out
    assert "Found 3 errors in 1 file" in out


def test_the_package_itself_type_checks():
    """celeriac ships ``py.typed``: its own annotations are what users' type checkers rely on."""
    package = Path(celeriac.__file__).parent
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", str(package)],
                         capture_output=True, text=True, cwd=package.parent.parent)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Success: no issues found" in run.stdout
