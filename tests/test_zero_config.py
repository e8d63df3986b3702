"""What a newcomer does first: no configuration, a separate worker process, Celery-style app layouts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from celeriac import Celery

from .workers import worker_env, worker_process, write_module

TASKS = """
from celeriac import Celery
from celeriac.app.task import Task
from celeriac.signals import task_prerun

CALLS = []


class Audited(Task):
    def __call__(self, *args, **kwargs):
        print(f"audited call of {self.name}")
        return super().__call__(*args, **kwargs) * 10

    def on_success(self, retval, task_id, args, kwargs):
        print(f"on_success {retval} {task_id} {args}")

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        print(f"after_return {status}")


app = Celery("tasks")


@task_prerun.connect
def broken_receiver(**kwargs):
    raise RuntimeError("a receiver that raises")


@app.task
def add(x, y):
    return x + y


@app.task(base=Audited)
def audited(x):
    return x
"""


@pytest.fixture
def default_dir(tmp_path, monkeypatch):
    """A working directory with no configuration at all (no env overrides either)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELERIAC_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERIAC_RESULT_BACKEND", raising=False)
    write_module(tmp_path, "tasks", TASKS)
    return tmp_path


def test_unconfigured_app_works_with_a_separate_worker_process(default_dir):
    app = Celery("tasks")
    with worker_process("tasks", cwd=default_dir, env={"CELERIAC_BROKER_URL": "", "CELERIAC_RESULT_BACKEND": ""}) as w:
        assert app.send_task("tasks.add", (2, 3)).get(timeout=15) == 5
    assert (default_dir / "celeriac.sqlite3").exists()
    assert "sqlite:///celeriac.sqlite3" in w.output


def test_custom_call_and_hooks_run_in_the_worker_and_a_raising_receiver_is_harmless(default_dir):
    app = Celery("tasks")
    with worker_process("tasks", cwd=default_dir, env={"CELERIAC_BROKER_URL": "", "CELERIAC_RESULT_BACKEND": ""}) as w:
        result = app.send_task("tasks.audited", (4,))
        assert result.get(timeout=15) == 40
        w.wait_for_line(f"on_success 40 {result.id} (4,)")
        w.wait_for_line("after_return SUCCESS")
    assert "audited call of tasks.audited" in w.output
    assert "a receiver that raises" in w.output


@pytest.mark.parametrize("spec", ["proj", "proj.celery", "proj.celery.app", "proj.celery:app"])
def test_dash_a_accepts_every_celery_spelling(tmp_path, spec):
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    (pkg / "celery.py").write_text(f"from celeriac import Celery\napp = Celery('proj', broker={url!r})\n"
                                   "@app.task\ndef ping():\n    return 'pong'\n")
    run = subprocess.run([sys.executable, "-m", "celeriac", "-A", spec, "call", "proj.celery.ping"],
                         cwd=tmp_path, env=worker_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.strip()) == 36


def test_bad_setting_stops_the_worker_with_a_clear_message(tmp_path):
    write_module(tmp_path, "badconf", "from celeriac import Celery\napp = Celery('b')\napp.conf.update(worker_concurency=4)\n")
    run = subprocess.run([sys.executable, "-m", "celeriac", "-A", "badconf", "worker"], cwd=tmp_path,
                         env=worker_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "did you mean 'worker_concurrency'" in run.stderr
