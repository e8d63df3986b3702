"""The worker's check that a message's arguments fit the task (Celery's ``typing``), fast path included."""

from __future__ import annotations

import inspect

import pytest

from celeriac import Celery
from celeriac.message import Message
from celeriac.worker.handler import _arguments_fit

app = Celery("argcheck", broker="memory://", backend="memory://")


@app.task
def plain(a, b, c=3):
    return a


@app.task(bind=True)
def bound(self, a, b=2):
    return a


@app.task
def star(a, *rest, key=None, **extra):
    return a


def _fits_by_binding(task, args, kwargs) -> bool:
    try:
        inspect.signature(task._orig).bind(*((task,) if task.bind else ()), *args, **kwargs)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("task", [plain, bound, star])
@pytest.mark.parametrize("args", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)])
@pytest.mark.parametrize("kwargs", [{}, {"b": 5}, {"key": 1}, {"zzz": 0}])
def test_the_check_agrees_with_binding_the_signature(task, args, kwargs):
    msg = Message(id="t", task=task.name, args=list(args), kwargs=dict(kwargs))
    assert _arguments_fit(task, msg) == _fits_by_binding(task, args, kwargs)
