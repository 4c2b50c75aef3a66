from antiapi.server.signatures import ToolSignatureCache
from antiapi.translate import ir


def test_tool_call_signature_is_remembered_and_refilled():
    cache = ToolSignatureCache(size=2)
    tap = cache.tap()
    for ev in [
        ir.Start(id="r"), ir.BlockStart(index=0, kind="text"), ir.SignatureDelta(index=0, signature="not-a-tool"),
        ir.BlockStart(index=1, kind="tool_call", id="call_a", name="f"), ir.ArgsDelta(index=1, json="{}"),
        ir.SignatureDelta(index=1, signature="SIG-A"), ir.BlockStop(index=1), ir.End(),
    ]:
        tap.feed(ev)
    req = ir.Request(model="m", messages=[
        ir.Message(role="assistant", content=[ir.ToolCallPart(id="call_a", name="f"), ir.ToolCallPart(id="call_b", name="f")]),
    ])
    assert cache.fill(req) == 1
    assert [p.signature for p in req.messages[0].content] == ["SIG-A", None]


def test_cache_is_bounded():
    cache = ToolSignatureCache(size=2)
    for i in range(3):
        cache.put(f"c{i}", f"s{i}")
    assert cache.get("c0") is None and cache.get("c2") == "s2"
