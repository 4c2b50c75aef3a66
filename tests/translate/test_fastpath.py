import json

from hypothesis import given, strategies as st

from antiapi.translate import fastpath


def test_rewrite_only_top_level_model_and_keeps_every_other_byte():
    body = (
        b'{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\"","model":"nested"}],'
        b'"metadata":{"model":"also-nested"},  "model" : "claude-x", "stream":true}'
    )
    out = fastpath.rewrite_model(body, "claude-real-1")
    assert out == body.replace(b'"claude-x"', b'"claude-real-1"')
    assert json.loads(out)["metadata"]["model"] == "also-nested"


def test_rewrite_is_identity_when_same_model():
    body = b'{"model":"a","x":1}'
    assert fastpath.rewrite_model(body, "a") is body


def test_rewrite_preserves_unicode_escapes_and_signatures():
    body = b'{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"\\u00f7 2","signature":"EqQB/+=="}]}]}'
    out = fastpath.rewrite_model(body, "n")
    assert out == body.replace(b'"model":"m"', b'"model":"n"')


def test_peek_reads_model_and_stream():
    v = fastpath.peek(b'{"stream":true,"messages":[],"model":"gpt"}')
    assert (v.model, v.stream) == ("gpt", True)


def test_model_replacer_renames_in_response_bytes():
    rep = fastpath.model_replacer("up-1", "client")
    assert rep(b'{"model":"up-1","x":"model up-1"}') == b'{"model":"client","x":"model up-1"}'
    assert rep(b'{"model": "up-1"}') == b'{"model": "client"}'
    assert fastpath.model_replacer("a", "a") is None


@given(
    st.dictionaries(st.text(max_size=8), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8), max_size=5),
    st.text(min_size=1, max_size=20),
)
def test_rewrite_matches_a_json_roundtrip(obj, new_model):
    obj = dict(obj)
    obj["model"] = "orig"
    body = json.dumps(obj).encode()
    out = fastpath.rewrite_model(body, new_model)
    expected = dict(obj)
    expected["model"] = new_model
    assert json.loads(out) == expected
