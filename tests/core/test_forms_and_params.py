from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.core.errors import InvalidRequest
from kassa.core.http.forms import decode_body, decode_query
from kassa.core.http.params import Metadata, Params, merge_metadata, parse


def test_bracket_keys_nest_like_the_stripe_sdk_sends_them():
    assert decode_query(
        "metadata[a]=1&metadata[b]=&expand[0]=x&expand[1]=y&items[0][price]=p&items[1][price]=q"
    ) == {
        "metadata": {"a": "1", "b": ""},
        "expand": ["x", "y"],
        "items": [{"price": "p"}, {"price": "q"}],
    }
    assert decode_query("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}
    assert decode_query("items[10][x]=b&items[2][x]=a") == {"items": [{"x": "a"}, {"x": "b"}]}


@pytest.mark.parametrize("query", ["a=1&a[b]=2", "a[b]=2&a=1", "a]=1", "a[b=1", "a=%00"])
def test_malformed_keys_are_a_400_naming_the_param(query):
    with pytest.raises(InvalidRequest) as err:
        decode_query(query)
    assert err.value.param


def test_numeric_top_level_names_stay_names():
    assert decode_query("0=a&1=b") == {"0": "a", "1": "b"}


def test_only_ascii_digits_are_list_indices():
    # "²" is a digit to str.isdigit() but not to int(): a key, not an index (was a 500).
    assert decode_query("metadata[%C2%B2]=x") == {"metadata": {"\u00b2": "x"}}


def test_json_bodies_are_accepted_and_must_be_objects():
    assert decode_body("application/json", b'{"a": {"b": 1}}') == {"a": {"b": 1}}
    with pytest.raises(InvalidRequest):
        decode_body("application/json", b"[1]")
    assert decode_body("application/x-www-form-urlencoded", b"") == {}


@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=10))
def test_the_decoder_never_crashes(pairs):
    from urllib.parse import urlencode

    with contextlib.suppress(InvalidRequest):
        decode_query(urlencode(pairs))


class _Example(Params):
    metadata: Metadata = None
    count: int = 0


def test_params_errors_name_the_parameter():
    with pytest.raises(InvalidRequest) as err:
        parse(_Example, {"count": "lots"})
    assert err.value.param == "count"
    with pytest.raises(InvalidRequest) as err:
        parse(_Example, {"colour": "red"})
    assert (err.value.param, err.value.message) == ("colour", "Received unknown parameter: colour")
    with pytest.raises(InvalidRequest) as err:
        parse(_Example, {"metadata": {str(i): "v" for i in range(51)}})
    assert err.value.param == "metadata"
    with pytest.raises(InvalidRequest):
        parse(_Example, {"metadata": {"k": "v" * 501}})


def test_metadata_merge_removes_blank_keys_and_clears_on_empty_string():
    assert merge_metadata({"a": "1", "b": "2"}, {"a": None, "c": "3"}, True) == {"b": "2", "c": "3"}
    assert merge_metadata({"a": "1"}, None, True) == {}
    assert merge_metadata({"a": "1"}, None, False) == {"a": "1"}
    assert parse(_Example, {"metadata": ""}).metadata is None
