"""``conf.update`` with random names and values: accepted, or ImproperlyConfigured naming the near miss."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import Celery
from celeriac.config import CELERY_ONLY_NAMES, DEFAULTS, OLD_NAMES, normalize_key
from celeriac.exceptions import ImproperlyConfigured

from .strategies import examples, json_values

KNOWN = sorted(DEFAULTS)
FAST = settings(max_examples=examples(200), deadline=500)


@pytest.fixture(scope="module")
def app():
    app = Celery("fuzz-settings", broker="memory://", backend="memory://", set_as_current=False)
    yield app
    app.close()


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A known name with one character dropped, doubled or changed (a typo)."""
    name = draw(st.sampled_from(KNOWN))
    i = draw(st.integers(0, len(name) - 1))
    edit = draw(st.sampled_from(["drop", "double", "change"]))
    if edit == "drop":
        return name[:i] + name[i + 1:]
    if edit == "double":
        return name[:i] + name[i] + name[i:]
    return name[:i] + draw(st.sampled_from("xqz_")) + name[i + 1:]


names = st.one_of(st.text(max_size=40), near_misses(), st.sampled_from(KNOWN + list(OLD_NAMES)),
                  st.sampled_from(KNOWN).map(str.upper))


@FAST
@given(names, json_values)
def test_any_name_and_value_is_accepted_or_refused_with_a_reason(app, name, value):
    logging.disable(logging.WARNING)  # unknown names are logged; thousands of lines help nobody here
    try:
        app.conf.update({name: value})
    except ImproperlyConfigured as exc:
        assert repr(name) in str(exc) and "did you mean" in str(exc)
        return
    finally:
        logging.disable(logging.NOTSET)
    known = normalize_key(name)
    if known is not None:
        assert app.conf[known] == value


@FAST
@given(near_misses())
def test_a_typo_of_a_setting_name_suggests_the_right_one(app, name):
    if normalize_key(name) is not None or name.lower() in CELERY_ONLY_NAMES:
        return  # the edit happened to produce another name that is allowed
    with pytest.raises(ImproperlyConfigured, match="did you mean"):
        app.conf.update({name: 1})


def test_a_close_typo_is_refused_with_the_right_name(app):
    with pytest.raises(ImproperlyConfigured, match="did you mean 'broker_url'"):
        app.conf.update(broker_ulr="redis://")


@pytest.mark.parametrize("key", [1, None, ("broker", "url")])
def test_a_setting_name_that_is_not_text_is_improperly_configured(app, key):
    with pytest.raises(ImproperlyConfigured):
        app.conf.update({key: "x"})
