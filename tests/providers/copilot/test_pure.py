"""Pure parts of the Copilot provider: device-flow state machine, model names and catalogue, quota
parsing, error classification, X-Initiator, endpoint settings."""

from __future__ import annotations

import pytest

from antiapi.config.schema import ProviderConfig
from antiapi.errors import ConfigError, ErrorKind, LimitReached, NeedsSignIn, UpstreamHTTPError
from antiapi.providers.copilot.api import copilot_error_parser, has_images, initiator
from antiapi.providers.copilot.device import DeviceCode, DeviceFlowState, Failed, Granted, Pending
from antiapi.providers.copilot.models import (
    STATIC_IDS,
    all_client_names,
    client_names,
    parse_catalog,
    to_copilot,
)
from antiapi.providers.copilot.quota import (
    QuotaTracker,
    parse_retry_after,
    parse_time,
    window_from_header,
    windows_from_user,
)
from antiapi.providers.copilot.settings import DEFAULT_CLIENT_ID, from_config
from antiapi.providers.copilot.token import github_error_parser, parse_envelope, refresh_time
from tests.providers.copilot.mock import DEFAULT_CATALOG, model_entry

# ---------------------------------------------------------------------------- device flow


def _code(interval=5, expires_in=900):
    return DeviceCode.from_json({"device_code": "dc", "user_code": "ABCD-1234",
                                 "verification_uri": "https://github.com/login/device",
                                 "expires_in": expires_in, "interval": interval})


def test_device_flow_pending_slow_down_then_granted():
    st = DeviceFlowState(_code(), started_at=1000.0)
    assert st.wait_before_poll(1000.0) == 5.0
    assert st.on_response({"error": "authorization_pending"}, 1005.0) == Pending(5.0)
    assert st.next_poll_at == 1010.0
    # slow_down adds 5 s to the interval, for this and every later poll
    assert st.on_response({"error": "slow_down", "error_description": "too fast"}, 1010.0) == Pending(10.0, True)
    assert st.wait_before_poll(1012.0) == 8.0
    assert st.on_response({"error": "authorization_pending"}, 1020.0) == Pending(10.0)
    # a slow_down carrying a larger interval wins over +5
    assert st.on_response({"error": "slow_down", "interval": 30}, 1030.0) == Pending(30.0, True)
    out = st.on_response({"access_token": "ghu_x", "token_type": "bearer", "scope": "read:user"}, 1060.0)
    assert out == Granted("ghu_x", "bearer", "read:user") and st.done
    assert "ghu_x" not in repr(out)


@pytest.mark.parametrize("err,reason", [("expired_token", "expired"), ("access_denied", "denied"),
                                        ("device_flow_disabled", "error")])
def test_device_flow_terminal_errors(err, reason):
    st = DeviceFlowState(_code(), 0.0)
    out = st.on_response({"error": err, "error_description": "d"}, 5.0)
    assert isinstance(out, Failed) and out.reason == reason
    assert "antiapi login copilot" in out.message


def test_device_flow_expires_by_time_without_an_answer():
    st = DeviceFlowState(_code(expires_in=30), 0.0)
    assert st.check_expiry(29.9) is None
    # pending after the deadline is an expiry, not another wait
    assert isinstance(st.on_response({"error": "authorization_pending"}, 30.0), Failed)
    st2 = DeviceFlowState(_code(expires_in=30), 0.0)
    f = st2.check_expiry(31.0)
    assert f is not None and f.reason == "expired" and "ABCD-1234" in f.message


def test_device_code_defaults_and_errors():
    c = DeviceCode.from_json({"device_code": "secret-device-code", "user_code": "U", "verification_uri": "https://x"})
    assert (c.interval, c.expires_in) == (5.0, 900.0)
    assert "secret-device-code" not in repr(c)
    with pytest.raises(ValueError, match="lacks user_code"):
        DeviceCode.from_json({"device_code": "d", "verification_uri": "https://x"})
    with pytest.raises(ValueError, match="bad client"):
        DeviceCode.from_json({"error": "unauthorized_client", "error_description": "bad client"})


# ---------------------------------------------------------------------------- models


@pytest.mark.parametrize("name,cid", [
    ("claude-sonnet-4-5", "claude-sonnet-4.5"),
    ("claude-opus-4-5-thinking", "claude-opus-4.5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
    ("claude-opus-4-5-thinking-20251101", "claude-opus-4.5"),
    ("claude-sonnet-4.5", "claude-sonnet-4.5"),
    ("claude-3-5-sonnet", "claude-3.5-sonnet"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("gpt-4.1", "gpt-4.1"),
    ("gpt-5-mini", "gpt-5-mini"),
    ("gemini-2.5-pro", "gemini-2.5-pro"),
])
def test_client_names_map_to_copilot_ids(name, cid):
    assert to_copilot(name) == cid
    assert to_copilot(name, frozenset({cid, "gpt-4o"})) == cid


def test_every_listed_name_maps_back_to_its_id():
    for cid in ("claude-sonnet-4.5", "claude-opus-4.5", "gpt-4.1", "claude-haiku-4.5"):
        for n in client_names(cid):
            assert to_copilot(n, frozenset({cid})) == cid
    assert client_names("claude-sonnet-4.5") == [
        "claude-sonnet-4.5", "claude-sonnet-4-5", "claude-sonnet-4-5-thinking", "claude-sonnet-4-5-20250929"]
    assert client_names("gpt-4.1") == ["gpt-4.1"]
    static = all_client_names(list(STATIC_IDS))
    for n in ("claude-opus-4-5-thinking", "claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"):
        assert n in static


def test_catalog_filters_and_reads_capabilities():
    infos = {i.id: i for i in parse_catalog({"object": "list", "data": DEFAULT_CATALOG + [
        model_entry("gpt-disabled", policy="disabled")]})}
    # embeddings, picker-hidden and not-enabled models are not served
    assert set(infos) == {"gpt-4.1", "gpt-4o", "gpt-4o-mini", "claude-sonnet-4.5", "claude-opus-4.5",
                          "gpt-5.3-codex", "o3-mini-text"}
    assert infos["gpt-5.3-codex"].responses_only and not infos["gpt-4.1"].responses_only
    assert infos["gpt-4o-mini"].capabilities().images is False
    assert infos["o3-mini-text"].capabilities().tools is False
    assert infos["claude-opus-4.5"].premium is True and infos["claude-opus-4.5"].multiplier == 3.0
    assert infos["gpt-4.1"].context_window == 128000
    # the `models` key, as a map
    alt = parse_catalog({"models": {"gpt-4.1": {"capabilities": {"type": "chat"}}}})
    assert [i.id for i in alt] == ["gpt-4.1"]
    assert parse_catalog("garbage") == [] and parse_catalog({"data": [1, {"id": ""}]}) == []


# ---------------------------------------------------------------------------- quota


def test_quota_snapshot_header():
    w = window_from_header("premium_interactions", "ent=300&ov=0.0&ovPerm=false&rem=88.5&rst=2026-04-01T00%3A00%3A00Z")
    assert (w.used_percent, w.remaining, w.entitlement) == (11.5, 265.5, 300.0)
    assert w.resets_at == parse_time("2026-04-01T00:00:00Z") == 1775001600.0
    unl = window_from_header("chat", "ent=-1&rem=100&rst=2026-04-01")
    assert (unl.used_percent, unl.remaining, unl.entitlement) == (0.0, None, None)


def test_quota_from_user_info_paid_and_free():
    paid = windows_from_user({
        "quota_reset_date_utc": "2026-04-01T00:00:00.000Z",
        "quota_snapshots": {
            "chat": {"unlimited": True, "percent_remaining": 100},
            "premium_interactions": {"entitlement": 300, "remaining": 127, "percent_remaining": 42.3, "unlimited": False},
        },
    })
    assert [w.name for w in paid] == ["premium_interactions", "chat"]
    assert (paid[0].used_percent, paid[0].remaining, paid[0].entitlement) == (57.7, 127.0, 300.0)
    assert paid[0].resets_at == 1775001600.0
    free = windows_from_user({"limited_user_reset_date": "2026-04-01", "limited_user_quotas": {"chat": 10, "completions": 2000},
                              "monthly_quotas": {"chat": 50, "completions": 2000}})
    assert [(w.name, w.remaining, w.entitlement, w.used_percent) for w in free] == [
        ("chat", 10.0, 50.0, 80.0), ("completions", 2000.0, 2000.0, 0.0)]


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after("Wed, 01 Apr 2026 00:00:10 GMT", 1775001600.0) == 10.0
    assert parse_retry_after("soon", 0.0) is None and parse_retry_after(None, 0.0) is None


def test_tracker_status_transitions():
    t = QuotaTracker()
    assert t.state(0).status == "ok"
    t.mark_limited(100.0, "used up")
    s = t.state(50.0)
    assert (s.status, s.limited_until, s.detail) == ("limited", 100.0, "used up")
    assert t.state(100.0).status == "ok"
    t.sign_in_detail = "run antiapi login copilot"
    assert t.state(0).status == "needs_sign_in"


# ---------------------------------------------------------------------------- errors


def test_copilot_error_classification():
    parse = copilot_error_parser("copilot:a", reset_hint=lambda: 5000.0, clock=lambda: 1000.0)
    e = parse(402, {}, b'{"message":"You have no quota","code":"quota_exceeded"}')
    assert isinstance(e, LimitReached) and e.retryable and e.resets_at == 5000.0 and e.code == "quota_exceeded"
    e = parse(402, {"retry-after": "60"}, b'{"message":"You have no quota","code":"quota_exceeded"}')
    assert e.resets_at == 1060.0 and e.retry_after == 60.0
    e = parse(429, {"retry-after": "12", "x-ratelimit-exceeded": "global-chat"},
              b'{"error":{"message":"slow down","code":"rate_limited","type":"rate_limit_error"}}')
    assert type(e) is UpstreamHTTPError and e.retryable and e.kind is ErrorKind.RATE_LIMIT and e.retry_after == 12.0
    assert e.headers == {"retry-after": "12", "x-ratelimit-exceeded": "global-chat"}
    e = parse(401, {}, b"unauthorized: token expired")
    assert e.status == 401 and "token expired" in e.message
    e = parse(400, {}, b"bad request: missing Editor-Version header for IDE auth")
    assert e.status == 502 and "editor_version" in e.message
    e = parse(400, {}, b'{"error":{"message":"model \\"gpt-5.4\\" is not accessible via the /chat/completions endpoint","code":"unsupported_api_for_model"}}')
    assert e.status == 400 and e.code == "unsupported_api_for_model" and not e.retryable
    e = parse(503, {}, b"upstream provider rate limit")
    assert e.kind is ErrorKind.OVERLOADED and e.retryable


def test_github_error_classification_never_leaks_tokens():
    parse = github_error_parser("copilot:a", "alice", what="exchanging")
    e = parse(401, {}, b'{"message":"Bad credentials"}')
    assert isinstance(e, NeedsSignIn) and e.retryable and "antiapi login copilot" in e.message and e.account == "alice"
    e = parse(403, {}, b'{"message":"x","error_details":{"notification_id":"no_copilot_access","message":"You do not have access"}}')
    assert e.status == 403 and e.code == "no_copilot_access" and e.retryable and "You do not have access" in e.message
    e = parse(403, {"retry-after": "30"}, b'{"message":"API rate limit exceeded for user ID 1."}')
    assert e.kind is ErrorKind.RATE_LIMIT and e.retry_after == 30.0


def test_token_envelope_and_refresh_schedule():
    tok = parse_envelope({"token": "tid=1;exp=2:mac", "expires_at": 1000 + 1800, "refresh_in": 1500,
                          "sku": "yearly_subscriber", "endpoints": {"api": "https://api.individual.githubcopilot.com/"}}, 1000.0)
    assert tok.api == "https://api.individual.githubcopilot.com" and tok.refresh_at == 1000 + 1500 - 60
    assert "tid=" not in repr(tok) and "token" not in tok.envelope
    assert refresh_time(0.0, 2.0, 1.0) == pytest.approx(0.9)  # short-lived tokens: 10 % early
    assert refresh_time(0.0, None, None) == 540.0


# ---------------------------------------------------------------------------- initiator, images


def test_x_initiator_is_user_only_for_a_real_user_turn():
    u = {"role": "user", "content": "hi"}
    a = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    t = {"role": "tool", "tool_call_id": "c1", "content": "42"}
    assert initiator([{"role": "system", "content": "s"}, u]) == "user"
    assert initiator([u, a, t]) == "agent"
    # an Anthropic tool_result turn with extra text renders as tool + user: still the agent loop
    assert initiator([u, a, t, {"role": "user", "content": "<system-reminder>x</system-reminder>"}]) == "agent"
    assert initiator([u, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "next question"}]) == "user"
    assert initiator([u, {"role": "assistant", "content": "prefill"}]) == "agent"
    assert has_images([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}])
    assert not has_images([u, a, t])


# ---------------------------------------------------------------------------- settings


def _pc(**kw):
    return ProviderConfig(name="copilot", type="copilot", base_url="https://api.githubcopilot.com", **kw)


def test_endpoint_defaults_overrides_and_enterprise():
    s = from_config(_pc())
    e = s.endpoints
    assert (e.device_code, e.access_token) == ("https://github.com/login/device/code", "https://github.com/login/oauth/access_token")
    assert (e.user, e.token, e.quota) == ("https://api.github.com/user", "https://api.github.com/copilot_internal/v2/token",
                                          "https://api.github.com/copilot_internal/user")
    assert e.api is None and e.default_api == "https://api.githubcopilot.com"
    assert s.client_id == DEFAULT_CLIENT_ID == "Iv1.b507a08c87ecfe98"
    assert s.verify_tls is True
    ghe = from_config(_pc(options={"domain": "octo.ghe.com"})).endpoints
    assert (ghe.device_code, ghe.token, ghe.default_api) == (
        "https://octo.ghe.com/login/device/code", "https://api.octo.ghe.com/copilot_internal/v2/token",
        "https://copilot-api.octo.ghe.com")
    o = from_config(_pc(endpoints={"github_api": "http://gh/", "token": "http://t/x", "api": "http://proxy/"})).endpoints
    assert (o.user, o.token, o.api) == ("http://gh/user", "http://t/x", "http://proxy")
    forced = ProviderConfig(name="c", type="copilot", base_url="http://my-proxy:1/copilot")
    assert from_config(forced).endpoints.api == "http://my-proxy:1/copilot"
    with pytest.raises(ConfigError, match="unknown key.*tokn.*known keys"):
        from_config(_pc(endpoints={"tokn": "x"}))
    with pytest.raises(ConfigError, match="unknown copilot option"):
        from_config(_pc(options={"editor": "x"}))


def test_insecure_tls_opt_out_warns_loudly(caplog):
    s = from_config(_pc(), {"ANTI_API_COPILOT_INSECURE_TLS": "1"})
    assert s.verify_tls is False
    assert "TLS CERTIFICATE VERIFICATION IS OFF" in caplog.text
    assert from_config(_pc(), {"ANTI_API_COPILOT_INSECURE_TLS": "0"}).verify_tls is True
