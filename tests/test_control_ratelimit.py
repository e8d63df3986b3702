"""Rate limits: rate parsing, the token bucket, and a slot giving a message back instead of waiting."""

from __future__ import annotations

import pytest

from celeriac import Celery
from celeriac.message import Message, encode
from celeriac.worker import ratelimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "per_second"), [("10/m", 10 / 60), ("5/s", 5.0), ("100/h", 100 / 3600), ("7", 7.0),
                                                  (3, 3.0), (None, None), ("0/s", None)])
def test_parse_rate_understands_celery_spellings(text, per_second):
    assert ratelimit.parse_rate(text) == pytest.approx(per_second) if per_second else ratelimit.parse_rate(text) is None


def test_parse_rate_rejects_an_unknown_unit():
    with pytest.raises(ValueError, match="N/s"):
        ratelimit.parse_rate("5/fortnight")


def test_bucket_spaces_tokens_evenly_and_books_future_ones():
    clock = Clock()
    bucket = ratelimit.TokenBucket(2.0, clock)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    clock.now += 10
    assert bucket.reserve() == 0.0


def _delivery(app, task, message_id):
    from celeriac.brokers.base import Delivery

    payload = encode(Message(id=message_id, task=task, queue="celery"))
    return Delivery("celery", payload, message_id, f"tag-{message_id}")


@pytest.fixture
def app(request):
    app = Celery("rl", broker=f"memory://rl-{id(request)}", backend="memory://")

    @app.task(name="rl.slow", rate_limit="1/s")
    def slow():
        return 1

    @app.task(name="rl.fast")
    def fast():
        return 2

    return app


def test_a_long_wait_releases_the_message_with_a_delay_and_it_runs_when_it_returns(app, monkeypatch):
    clock = Clock()
    limiter = ratelimit.RateLimiter(app, clock=clock)
    monkeypatch.setitem(ratelimit._limiters, app, limiter)
    released = []
    monkeypatch.setattr(app.broker, "release", lambda deliveries, delay=0.0: released.append((deliveries[0].message_id, delay)))
    first, second = _delivery(app, "rl.slow", "m1"), _delivery(app, "rl.slow", "m2")
    assert ratelimit.admit(app, first) is True
    assert ratelimit.admit(app, second) is False
    assert released == [("m2", pytest.approx(1.0))]
    clock.now += 1.0
    assert ratelimit.admit(app, second) is True  # its token was booked when it was released


def test_tasks_without_a_limit_are_never_held(app, monkeypatch):
    monkeypatch.setitem(ratelimit._limiters, app, ratelimit.RateLimiter(app, clock=Clock()))
    assert all(ratelimit.admit(app, _delivery(app, "rl.fast", f"f{i}")) for i in range(20))


def test_a_prefork_child_holds_its_share_of_the_node_rate(app):
    limiter = ratelimit.RateLimiter(app, share=4)
    assert limiter.rate_for("rl.slow") == pytest.approx(0.25)


def test_rate_limits_can_be_switched_off_for_a_worker(app, monkeypatch):
    app.conf.worker_disable_rate_limits = True
    monkeypatch.setitem(ratelimit._limiters, app, ratelimit.RateLimiter(app, clock=Clock()))
    assert all(ratelimit.admit(app, _delivery(app, "rl.slow", f"s{i}")) for i in range(5))
