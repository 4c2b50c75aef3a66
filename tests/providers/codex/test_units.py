"""Pure parts of the Codex provider: PKCE, URLs, JWT claims, catalogue/aliases, quota parsing,
request body re-check, error mapping."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from antiapi.config.schema import ProviderConfig
from antiapi.errors import ConfigError, ErrorKind, LimitReached, UpstreamHTTPError
from antiapi.providers.codex import models as M
from antiapi.providers.codex import oauth, quota
from antiapi.providers.codex.provider import CodexProvider, conversation_key, effort_setting
from antiapi.translate import ir
from antiapi.translate import openai_responses as R
from tests.providers.codex.mock import CodexMock, make_jwt


def test_pkce_verifier_and_s256_challenge():
    p = oauth.new_pkce()
    assert len(p.verifier) == 128 and "=" not in p.verifier
    digest = hashlib.sha256(p.verifier.encode()).digest()
    assert p.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert p.method == "S256"
    assert oauth.new_pkce().verifier != p.verifier
    assert p.verifier not in repr(p)
    s = oauth.new_state()
    assert len(s) == 43 and s != oauth.new_state()


def test_authorize_url_carries_every_required_parameter():
    ep = oauth.Endpoints()
    p = oauth.new_pkce()
    url = oauth.authorize_url(ep, redirect_uri="http://localhost:1455/auth/callback", pkce=p, state="st8")
    u = urlsplit(url)
    assert (u.scheme, u.netloc, u.path) == ("https", "auth.openai.com", "/oauth/authorize")
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    assert q == {
        "response_type": "code", "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "redirect_uri": "http://localhost:1455/auth/callback", "scope": "openid profile email offline_access",
        "code_challenge": p.challenge, "code_challenge_method": "S256", "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true", "state": "st8",
    }


def test_endpoints_defaults_and_overrides():
    d = oauth.Endpoints.resolve({}, "https://chatgpt.com/backend-api/codex")
    assert d.token_url == "https://auth.openai.com/oauth/token"
    assert d.device_usercode_url == "https://auth.openai.com/api/accounts/deviceauth/usercode"
    assert d.device_token_url == "https://auth.openai.com/api/accounts/deviceauth/token"
    assert d.usage_url == "https://chatgpt.com/backend-api/wham/usage"
    o = oauth.Endpoints.resolve({"auth_base": "http://127.0.0.1:9/", "token_url": "http://t/tok"}, "http://127.0.0.1:8/backend-api/codex/")
    assert o.authorize_url == "http://127.0.0.1:9/oauth/authorize"
    assert o.token_url == "http://t/tok"
    assert o.base_url == "http://127.0.0.1:8/backend-api/codex"
    assert o.usage_url == "http://127.0.0.1:8/backend-api/wham/usage"
    assert o.device_redirect_uri == "http://127.0.0.1:9/deviceauth/callback"
    with pytest.raises(ConfigError, match="unknown codex endpoint key.*tokn_url"):
        oauth.Endpoints.resolve({"tokn_url": "x"})


def test_parse_callback_accepts_full_urls_and_query_strings():
    cb = oauth.parse_callback(" http://localhost:1455/auth/callback?code=abc&scope=x&state=s1 \n")
    assert (cb.code, cb.state, cb.error) == ("abc", "s1", None)
    assert oauth.parse_callback("?code=z&state=q").code == "z"
    err = oauth.parse_callback("http://localhost:1455/auth/callback?error=access_denied&error_description=no&state=s")
    assert (err.error, err.error_description, err.code) == ("access_denied", "no", None)


def test_tokenset_reads_email_account_plan_and_exp_from_jwts():
    mock = CodexMock()
    mock.add_account("dev@example.com", plan="pro", account_id="acc-1")
    data = mock.issue_tokens("dev@example.com", access_ttl=1000)
    ts = oauth.TokenSet.from_response(data, now=time.time())
    assert (ts.email, ts.account_id, ts.plan, ts.label) == ("dev@example.com", "acc-1", "pro", "dev@example.com")
    assert abs(ts.expires_at - (time.time() + 1000)) < 5
    assert data["access_token"] not in repr(ts) and data["refresh_token"] not in repr(ts)
    # a refresh answer without id_token / refresh_token keeps the previous ones
    again = oauth.TokenSet.from_response({"access_token": make_jwt({"exp": 5})}, previous=ts)
    assert (again.refresh_token, again.email, again.expires_at) == (ts.refresh_token, "dev@example.com", 5.0)
    rec = oauth.TokenSet.from_record(ts.to_record())
    assert rec.to_record() == ts.to_record()
    # no exp claim: expires_in counts
    ts2 = oauth.TokenSet.from_response({"access_token": "opaque", "refresh_token": "r", "expires_in": 60}, now=100.0)
    assert ts2.expires_at == 160.0
    assert oauth.jwt_claims("not-a-jwt") == {} and oauth.jwt_claims("a.!!!.c") == {}


def test_catalogue_resolves_aliases_and_effort_suffixes():
    cat = M.Catalogue()
    assert cat.resolve("gpt-5.5") == ("gpt-5.5", None)
    assert cat.resolve("gpt-5.5-high") == ("gpt-5.5", "high")
    assert cat.resolve("gpt-5.3-codex-spark-low") == ("gpt-5.3-codex-spark", "low")
    assert cat.resolve("gpt-5.3-max-high") == ("gpt-5.5", "high")   # seed name with its own effort
    assert cat.resolve("gpt-5.3-max") == ("gpt-5.5", None)          # not "gpt-5.3" + effort "max"
    assert cat.resolve("gpt-5.2-codex-low") == ("gpt-5.5", "low")
    assert cat.resolve("gpt-5") == ("gpt-5.5", None)
    assert cat.resolve("some-new-model") == ("some-new-model", None)
    names = cat.names()
    for n in ("gpt-5.5", "gpt-5.5-xhigh", "gpt-5.3-max-high", "gpt-5.2-codex-low", "gpt-5", "gpt-5.6-sol"):
        assert n in names
    assert len(names) == len(set(names))
    assert "gpt-5.5-xhigh" not in M.Catalogue(effort_aliases=False).names()
    # a live catalogue with an older slug serves it directly
    live = M.Catalogue([M.ModelInfo("gpt-5.2-codex"), M.ModelInfo("gpt-6")])
    assert live.resolve("gpt-5.2-codex-high") == ("gpt-5.2-codex", "high")
    assert live.resolve("gpt-5") == ("gpt-5.2-codex", None)  # no gpt-5.5: first listed model


def test_effort_is_clamped_to_what_the_model_supports():
    cat = M.Catalogue()
    assert cat.clamp_effort("gpt-5.5", "high") == "high"
    assert cat.clamp_effort("gpt-5.5", "minimal") == "low"
    assert cat.clamp_effort("gpt-5.5", "ultra") == "xhigh"
    assert cat.clamp_effort("unknown-model", "minimal") == "minimal"


def test_parse_models_drops_hidden_disabled_and_reads_levels():
    data = {"models": [
        {"slug": "a", "default_reasoning_level": "low", "supported_reasoning_levels": [{"effort": "low"}, {"effort": "high"}],
         "visibility": "list", "context_window": 1000},
        {"slug": "b", "visibility": "hide"},
        {"slug": "c", "disabled": True},
        {"slug": "d", "model_picker_enabled": False},
        {"nope": 1}, "junk",
    ]}
    got = M.parse_models(data)
    assert [(m.slug, m.visible) for m in got] == [("a", True), ("b", False)]
    assert got[0].efforts == ("low", "high") and got[0].context_window == 1000
    assert M.Catalogue(got).names() [:3] == ["a", "a-low", "a-high"]
    with pytest.raises(ValueError):
        M.parse_models({"data": []})


def test_quota_from_headers_two_windows():
    mock = CodexMock()
    acc = mock.add_account("q@example.com", plan="pro")
    acc.primary_used, acc.secondary_used = 42.5, 80
    now = time.time()
    q = quota.from_headers(mock.codex_headers(acc), now)
    assert q is not None and q.source == "headers" and q.plan == "pro"
    p, s = q.windows
    assert (p.name, p.used_percent, p.remaining, p.window_minutes) == ("primary", 42.5, 57.5, 300)
    assert (s.name, s.used_percent, s.window_minutes) == ("secondary", 80.0, 10080)
    assert abs(p.resets_at - (now + acc.primary_reset_in)) < 3
    assert quota.from_headers({"content-type": "x"}, now) is None
    # reset-after only
    q2 = quota.from_headers({"x-codex-primary-used-percent": "1", "x-codex-primary-reset-after-seconds": "60"}, 1000.0)
    assert q2.windows[0].resets_at == 1060.0


def test_quota_from_usage_endpoint():
    data = {"plan_type": "plus", "rate_limit": {
        "primary_window": {"used_percent": 100, "limit_window_seconds": 18000, "reset_after_seconds": 60, "reset_at": 2000},
        "secondary_window": {"used_percent": 84, "limit_window_seconds": 604800, "reset_after_seconds": 9, "reset_at": 3000}},
        "rate_limit_reached_type": {"kind": "rate_limit_reached"}}
    q = quota.from_usage(data, 1000.0)
    assert [(w.name, w.used_percent, w.window_minutes, w.resets_at) for w in q.windows] == [
        ("primary", 100.0, 300, 2000.0), ("secondary", 84.0, 10080, 3000.0)]
    assert (q.status, q.limited_until, q.plan, q.source) == ("limited", 2000.0, "plus", "usage-endpoint")


def _provider(options=None, env=None, endpoints=None) -> CodexProvider:
    pc = ProviderConfig(name="codex:x", type="codex", base_url="https://chatgpt.com/backend-api/codex",
                        account=None, options=options or {}, endpoints=endpoints or {})
    return CodexProvider(pc, env=env or {})


def test_prepare_body_enforces_the_backend_rules():
    p = _provider()
    raw = msgspec.json.encode({
        "model": "gpt-5.5-high", "input": [
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "sys"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}], "id": "msg_1"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E"},
        ],
        "store": True, "stream": False, "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 100,
        "metadata": {"a": 1}, "user": "u", "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["message.output_text.logprobs"], "parallel_tool_calls": True, "tools": [],
    })
    body, key = p.prepare_body(raw)
    b = json.loads(body)
    assert b["model"] == "gpt-5.5"
    assert b["reasoning"] == {"effort": "high", "summary": "auto"}  # the alias's effort wins
    assert (b["store"], b["stream"], b["instructions"]) == (False, True, "")
    for k in ("temperature", "top_p", "max_output_tokens", "metadata", "user", "parallel_tool_calls"):
        assert k not in b
    assert b["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert b["input"][0]["role"] == "developer"
    assert all("id" not in it for it in b["input"])
    assert b["prompt_cache_key"] == key
    # same conversation -> same key; another conversation -> another key
    assert p.prepare_body(raw)[1] == key
    other = msgspec.json.encode({"model": "gpt-5.5", "input": [{"type": "message", "role": "user", "content": "yo"}]})
    assert p.prepare_body(other)[1] != key
    # the client's prompt_cache_key is kept
    mine = msgspec.json.encode({"model": "gpt-5.5", "input": [], "prompt_cache_key": "pck-1"})
    assert p.prepare_body(mine)[1] == "pck-1"


def test_effort_defaults_env_options_and_request():
    assert effort_setting({}, {}) == "medium"
    assert effort_setting({}, {"ANTI_API_CODEX_REASONING_EFFORT": "high"}) == "high"
    assert effort_setting({"reasoning_effort": "low"}, {"ANTI_API_CODEX_REASONING_EFFORT": "high"}) == "low"
    assert effort_setting({}, {"ANTI_API_CODEX_REASONING_EFFORT": "bogus"}) == "medium"
    p = _provider(env={"ANTI_API_CODEX_REASONING_EFFORT": "low"})
    no_effort = msgspec.json.encode({"model": "gpt-5.5", "input": [], "reasoning": {"summary": "auto"}})
    assert json.loads(p.prepare_body(no_effort)[0])["reasoning"] == {"summary": "auto", "effort": "low"}
    asked = msgspec.json.encode({"model": "gpt-5.5", "input": [], "reasoning": {"effort": "xhigh"}})
    assert json.loads(p.prepare_body(asked)[0])["reasoning"]["effort"] == "xhigh"
    minimal = msgspec.json.encode({"model": "gpt-5.5", "input": [], "reasoning": {"effort": "minimal"}})
    assert json.loads(p.prepare_body(minimal)[0])["reasoning"]["effort"] == "low"


def test_rendered_ir_requests_reach_the_backend_shape():
    """Anthropic thinking budgets / chat efforts, as the translators map them, end in the body."""
    p = _provider()
    tgt = p.target("gpt-5.5")
    assert (tgt.provider, tgt.reasoning_model) == ("codex", True)
    for reasoning, want in ((ir.Reasoning(enabled=True, budget_tokens=1024), "low"),
                            (ir.Reasoning(enabled=True, budget_tokens=30000), "high"),
                            (ir.Reasoning(effort="medium"), "medium"), (None, "medium")):
        req = ir.Request(model="gpt-5.5", messages=[ir.Message("user", [ir.TextPart("hi")])], reasoning=reasoning,
                         max_output_tokens=100, temperature=0.5, source="anthropic")
        out = R.render_request(req, tgt)
        assert out.stream is True
        b = json.loads(p.prepare_body(msgspec.json.encode(out.body))[0])
        assert b["reasoning"]["effort"] == want and b["reasoning"]["summary"] == "auto"
        assert "temperature" not in b and "max_output_tokens" not in b


def test_error_mapping_usage_limit_plain_429_and_others():
    p = _provider()
    now = time.time()
    body = json.dumps({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                 "plan_type": "plus", "resets_at": int(now) + 600, "resets_in_seconds": 600}}).encode()
    e = p.parse_error(429, {"x-codex-primary-used-percent": "100"}, body)
    assert isinstance(e, LimitReached) and e.retryable
    assert abs(e.resets_at - (now + 600)) < 3 and 590 <= e.retry_after <= 600
    assert e.code == "usage_limit_reached" and "usage limit" in e.message and "plus plan" in e.message
    # resets_in only
    e2 = p.parse_error(429, {}, json.dumps({"error": {"type": "usage_limit_reached", "resets_in_seconds": 60}}).encode())
    assert isinstance(e2, LimitReached) and abs(e2.resets_at - (now + 60)) < 3
    plain = p.parse_error(429, {"retry-after": "7"}, json.dumps({"error": {"code": "rate_limit_exceeded", "message": "slow"}}).encode())
    assert type(plain) is UpstreamHTTPError and plain.retryable and plain.retry_after == 7.0
    assert plain.kind is ErrorKind.RATE_LIMIT
    bad = p.parse_error(400, {}, b'{"detail":"Store must be set to false"}')
    assert not bad.retryable and bad.message == "codex: Store must be set to false"
    over = p.parse_error(503, {}, b'{"error":{"code":"server_is_overloaded","message":"busy"}}')
    assert over.retryable and over.status == 503
    unauth = p.parse_error(401, {}, b'{"detail":"Unauthorized"}')
    assert unauth.status == 401 and unauth.kind is ErrorKind.AUTHENTICATION
    noinc = p.parse_error(429, {}, b'{"error":{"type":"usage_not_included","message":"no codex"}}')
    assert noinc.kind is ErrorKind.BILLING and noinc.retryable


def test_conversation_key_is_stable_per_first_user_turn():
    first = [{"type": "message", "role": "developer", "content": "d"}, {"type": "message", "role": "user", "content": "u"}]
    later = first + [{"type": "message", "role": "assistant", "content": "a"}, {"type": "message", "role": "user", "content": "u2"}]
    assert conversation_key(first) == conversation_key(later)
    assert len(conversation_key(first)) == 36
    assert conversation_key([]) != conversation_key([])  # nothing to key on: a fresh id
