"""Long, coverage-guided fuzzing of celeriac's input parsers with atheris (libFuzzer).

    .venv/bin/pip install atheris                      # once; not needed by the normal test suite
    .venv/bin/python benchmarks/fuzz_inputs.py decode -runs=200000
    .venv/bin/python benchmarks/fuzz_inputs.py urls -max_total_time=300
    .venv/bin/python benchmarks/fuzz_inputs.py crontab -runs=100000
    .venv/bin/python benchmarks/fuzz_inputs.py decode --keep-going -runs=200000

A target may only return a value or raise its documented error (``DecodeError`` for decode,
``ImproperlyConfigured`` for URLs, ``ImproperlyConfigured``/``ValueError`` for crontab). Anything else
stops the run with the input that caused it, unless ``--keep-going`` is given: then every other
exception is counted by type and place, and a summary is printed at the end.

The hypothesis properties in ``tests/fuzz`` take a scale for long runs as well:
``CELERIAC_FUZZ_SCALE=100 .venv/bin/pytest tests/fuzz``.
"""

from __future__ import annotations

import atexit
import collections
import sys
import tempfile
import traceback
from pathlib import Path

import atheris
import orjson

with atheris.instrument_imports():
    from celeriac import backends, brokers, message
    from celeriac.exceptions import DecodeError, ImproperlyConfigured
    from celeriac.message import Message
    from celeriac.schedules import crontab

JSON = frozenset({"application/json"})
FINDINGS: collections.Counter[str] = collections.Counter()
EXAMPLES: dict[str, bytes] = {}


PLACES = [("headers", k) for k in ("id", "task", "eta", "expires", "retries", "timelimit", "group_index", "root_id")] + \
         [("properties", k) for k in ("priority", "delivery_info", "body_encoding")] + \
         [(None, k) for k in ("headers", "properties", "body", "content-type")]


def any_value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 7 if depth < 2 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeIntInRange(-(2**40), 2**40)
    if kind == 2:
        return fdp.ConsumeRegularFloat()
    if kind == 3:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 30))
    if kind == 4:
        return fdp.ConsumeBool()
    if kind == 5:
        return [any_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 6:
        return orjson.dumps(any_value(fdp, depth + 1)).decode()  # JSON text, as a body would be
    return {fdp.ConsumeUnicodeNoSurrogates(6): any_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))}


def decode(data: bytes) -> None:
    """Raw bytes, or a valid envelope with a few fields replaced by arbitrary values."""
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        envelope = orjson.loads(message.encode(Message(id="seed-1", task="proj.add", args=(2, 3))))
        for _ in range(fdp.ConsumeIntInRange(1, 3)):
            part, key = PLACES[fdp.ConsumeIntInRange(0, len(PLACES) - 1)]
            target = envelope if part is None else envelope.get(part)
            if isinstance(target, dict):
                target[key] = any_value(fdp)
        try:
            raw = orjson.dumps(envelope)
        except TypeError:
            return
    try:
        message.decode(raw, JSON)
    except DecodeError:
        pass


SCHEMES = sorted(set(brokers.SCHEMES) | set(backends.SCHEMES))


def urls(data: bytes) -> None:
    """A known scheme (most of the time) followed by arbitrary text."""
    fdp = atheris.FuzzedDataProvider(data)
    scheme = SCHEMES[fdp.ConsumeIntInRange(0, len(SCHEMES) - 1)] + "://" if fdp.ConsumeBool() else ""
    text = scheme + fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    for factory in (brokers.from_url, backends.from_url):
        try:
            obj = factory(text)
        except ImproperlyConfigured:
            continue
        getattr(obj, "close", lambda: None)()


def cron(data: bytes) -> None:
    try:
        schedule = crontab.from_string(data.decode("utf-8", "replace"))
    except (ImproperlyConfigured, ValueError):
        return
    import datetime as dt

    schedule.next_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.UTC)


TARGETS = {"decode": decode, "urls": urls, "crontab": cron}


def seeds(target: str) -> list[bytes]:
    if target == "decode":
        return [bytes(range(64)), b"\x00" * 32, b"\x01" + message.encode(Message(id="s", task="t"))]
    if target == "urls":
        return [b"redis://:pw@localhost:6379/0", b"amqp://guest:guest@localhost:5672//", b"sqlite:///x.db",
                b"rediss://h/1?ssl_cert_reqs=none", b"sentinel://a:26379;sentinel://b:26379"]
    return [b"*/15 9-17 * * mon-fri", b"0 0 29 2 *", b"5,10 */2 1-7 jan-mar sun"]


def main() -> None:
    target = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in TARGETS else "decode"
    keep_going = "--keep-going" in sys.argv
    run = TARGETS[target]
    args = [a for a in sys.argv if a not in (target, "--keep-going")]
    corpus = Path(tempfile.mkdtemp(prefix=f"celeriac-fuzz-{target}-"))
    for i, seed in enumerate(seeds(target)):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        try:
            run(data)
        except Exception as exc:
            if not keep_going:
                raise
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            FINDINGS[key] += 1
            if key not in EXAMPLES:
                EXAMPLES[key] = data[:200]
                print(f"new finding: {key}: {exc!r:.150}", flush=True)
            if sum(FINDINGS.values()) % 20000 == 0:
                report()

    atexit.register(report)
    atheris.Setup([*args, str(corpus)], one_input)
    atheris.Fuzz()


def report() -> None:
    """Printed at exit where libFuzzer lets Python run exit handlers, and every 20,000 findings."""
    if not FINDINGS:
        print("no exception besides the documented ones")
        return
    print("exceptions besides the documented ones (count, kind, first input):")
    for key, count in FINDINGS.most_common():
        print(f"  {count:8d}  {key}  {EXAMPLES[key]!r}")


if __name__ == "__main__":
    main()
