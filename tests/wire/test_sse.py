from hypothesis import given, strategies as st

from antiapi.wire.sse import SSEDecoder, encode_event

STREAM = (
    b"event: message_start\ndata: {\"a\":1}\n\n"
    b": comment\n\n"
    b"data: line1\ndata: line2\n\n"
    b"event: x\r\ndata: {\"b\":2}\r\n\r\n"
    b"data: [DONE]\n\n"
)


def _decode(chunks):
    d = SSEDecoder()
    out = []
    for c in chunks:
        out += d.feed(c)
    out += d.flush()
    return [(e.event, e.data) for e in out]


def test_decodes_events_comments_multiline_and_crlf():
    assert _decode([STREAM]) == [
        ("message_start", '{"a":1}'),
        (None, "line1\nline2"),
        ("x", '{"b":2}'),
        (None, "[DONE]"),
    ]


def test_last_event_without_blank_line_is_flushed():
    assert _decode([b"data: tail"]) == [(None, "tail")]


def test_raw_bytes_are_kept_for_passthrough():
    d = SSEDecoder()
    evs = d.feed(STREAM)
    # every byte but the comment-only block is kept, in order
    assert b"".join(e.raw for e in evs) == STREAM.replace(b": comment\n\n", b"")
    assert evs[0].raw == b"event: message_start\ndata: {\"a\":1}\n\n"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts):
    cuts = sorted(set(cuts))
    pieces, prev = [], 0
    for c in cuts + [len(STREAM)]:
        pieces.append(STREAM[prev:c])
        prev = c
    assert _decode(pieces) == _decode([STREAM])


def test_encode_event():
    assert encode_event('{"x":1}', "ping") == b'event: ping\ndata: {"x":1}\n\n'
    assert encode_event(b"[DONE]") == b"data: [DONE]\n\n"
