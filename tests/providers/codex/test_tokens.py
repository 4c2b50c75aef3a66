"""The provider and its per-account state driven directly (no gateway): single-flight refresh,
cancellation safety, rotation and reuse, re-login pickup, several entries sharing one account."""

from __future__ import annotations

import asyncio
import json
import stat

import msgspec
import pytest

from antiapi.accounts import CredentialStore
from antiapi.config.schema import ProviderConfig
from antiapi.errors import LimitReached, NeedsSignIn
from antiapi.providers.base import UpstreamCall
from antiapi.providers.codex import CodexProvider
from antiapi.providers.codex.oauth import Endpoints
from antiapi.providers.codex.tokens import AccountState, account_state
from tests.providers.codex.conftest import A
from tests.providers.codex.mock import UsageLimit


def _provider(mock, data_dir, name="codex:a", options=None) -> CodexProvider:
    pc = ProviderConfig(name=name, type="codex", base_url=mock.base_url, account=A,
                        endpoints={"auth_base": mock.auth_base}, options=options or {"poll_usage": False})
    return CodexProvider(pc, data_dir=data_dir, env={})


def _call(text="hi", model="gpt-5.5") -> UpstreamCall:
    body = {"model": model, "instructions": "", "input": [{"type": "message", "role": "user",
                                                            "content": [{"type": "input_text", "text": text}]}],
            "store": False, "stream": True, "include": ["reasoning.encrypted_content"]}
    return UpstreamCall(dialect="openai_responses", model=model, body=msgspec.json.encode(body), stream=True)


async def _text(resp) -> str:
    raw = (await resp.aread()).decode()
    await resp.aclose()
    return "".join(json.loads(line[6:]).get("delta", "") for line in raw.splitlines()
                   if line.startswith("data: ") and '"response.output_text.delta"' in line)


def _save(mock, tmp_path, **kw) -> dict:
    rec = mock.credentials_record(A, **kw)
    CredentialStore(tmp_path).save("codex", A, rec)
    return rec


async def test_fifty_concurrent_fresh_calls_refresh_once(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(refresh_delay=0.2)
    mock.add_account(A)
    old = _save(mock, tmp_path, access_ttl=-10)          # already expired
    st = AccountState(CredentialStore(tmp_path), A)
    p = _provider(mock, tmp_path)
    got = await asyncio.gather(*(st.fresh(p.client, p.endpoints) for _ in range(50)))
    assert mock.refreshes == 1 and st.refreshes == 1
    assert len({t.access_token for t in got}) == 1 and got[0].access_token != old["access_token"]
    saved = CredentialStore(tmp_path).load("codex", A)
    assert saved["refresh_token"] == got[0].refresh_token != old["refresh_token"]
    assert stat.S_IMODE(CredentialStore(tmp_path).path("codex", A).stat().st_mode) == 0o600
    await p.aclose()


async def test_a_cancelled_refresh_still_saves_the_rotated_token(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(refresh_delay=0.3)
    mock.add_account(A)
    _save(mock, tmp_path, access_ttl=-10)
    st = AccountState(CredentialStore(tmp_path), A)
    p = _provider(mock, tmp_path)
    t = asyncio.ensure_future(st.fresh(p.client, p.endpoints))
    await asyncio.sleep(0.1)
    t.cancel()                                            # e.g. the client went away mid-refresh
    with pytest.raises(asyncio.CancelledError):
        await t
    again = await st.fresh(p.client, p.endpoints)         # waits for the same refresh, no second one
    assert mock.refreshes == 1
    assert CredentialStore(tmp_path).load("codex", A)["refresh_token"] == again.refresh_token
    assert mock.refresh_tokens[again.refresh_token]["active"] is True
    await p.aclose()


async def test_reused_refresh_token_means_sign_in_again(codex_mock, tmp_path):
    rec = _save(codex_mock, tmp_path, access_ttl=-10)
    codex_mock.refresh_tokens[rec["refresh_token"]]["active"] = False   # another program rotated it
    p = _provider(codex_mock, tmp_path)
    with pytest.raises(NeedsSignIn, match="already used .*antiapi login codex"):
        await p.send(_call())
    q = p.quota()
    assert q.status == "needs_sign_in"
    assert CredentialStore(tmp_path).load("codex", A)["needs_sign_in"].startswith("its refresh token was already used")
    # a restart remembers it without asking the token server again
    mock_refreshes = codex_mock.refreshes
    st2 = AccountState(CredentialStore(tmp_path), A)
    assert st2.needs_sign_in is not None
    with pytest.raises(NeedsSignIn):
        st2.current()
    assert codex_mock.refreshes == mock_refreshes
    # a new sign-in (the login command rewrites the file) is used at once
    _save(codex_mock, tmp_path)
    assert p.quota().status == "ok"
    assert await _text(await p.send(_call("again"))) == "mock reply: again"
    await p.aclose()


async def test_second_401_after_refresh_needs_sign_in(codex_mock, tmp_path):
    from tests.providers.codex.mock import Unauthorized

    _save(codex_mock, tmp_path)
    p = _provider(codex_mock, tmp_path)
    codex_mock.enqueue(Unauthorized(), Unauthorized())
    codex_mock.expire_access_tokens()
    with pytest.raises(NeedsSignIn, match="refused freshly refreshed tokens"):
        await p.send(_call())
    assert codex_mock.refreshes == 1
    await p.aclose()


async def test_two_provider_entries_share_one_account_state(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(refresh_delay=0.2)
    mock.add_account(A)
    _save(mock, tmp_path)
    p1, p2 = _provider(mock, tmp_path, "fast:a"), _provider(mock, tmp_path, "slow:a")
    assert p1.state is p2.state is account_state(CredentialStore(tmp_path), A)
    mock.expire_access_tokens()
    async def one(p, i):
        return await _text(await p.send(_call(f"m{i}")))

    texts = await asyncio.gather(*(one(p, i) for i, p in enumerate([p1, p2] * 5)))
    assert texts == [f"mock reply: m{i}" for i in range(10)]
    assert mock.refreshes == 1                             # no refresh_token_reused between the two
    await p1.aclose()
    await p2.aclose()


async def test_usage_limit_benches_the_account_until_reset(codex_mock, tmp_path):
    _save(codex_mock, tmp_path)
    p = _provider(codex_mock, tmp_path)
    codex_mock.enqueue(UsageLimit(resets_in=120))
    with pytest.raises(LimitReached) as ei:
        await p.send(_call())
    assert ei.value.retryable and 110 < ei.value.retry_after <= 120
    with pytest.raises(LimitReached, match="usage limit until"):
        await p.send(_call())                              # not sent: the account is cooling down
    assert len(codex_mock.responses_requests()) == 1
    p.state.limited_until -= 200                           # the reset time has passed
    assert p.quota().status == "ok" and p.quota().limited_until is None
    assert await _text(await p.send(_call("later"))) == "mock reply: later"
    await p.aclose()


async def test_list_models_without_sign_in_returns_the_fallback_at_once(codex_mock, tmp_path):
    p = _provider(codex_mock, tmp_path)                    # nothing stored for A
    names = await asyncio.wait_for(p.list_models(), 1)
    assert "gpt-5.6-terra" in names and codex_mock.requests == []
    with pytest.raises(NeedsSignIn, match="not signed in|no credentials"):
        await p.send(_call())
    assert p.quota().status == "needs_sign_in"
    await p.aclose()


async def test_wham_usage_refresh(codex_mock, tmp_path):
    _save(codex_mock, tmp_path)
    codex_mock.accounts[A].primary_used = 100.0
    p = _provider(codex_mock, tmp_path)
    q = await p.refresh_quota()
    assert q.status == "limited" and q.windows[0].used_percent == 100.0
    [u] = [r for r in codex_mock.requests if r.path == "/backend-api/wham/usage"]
    assert u.headers["chatgpt-account-id"] == codex_mock.accounts[A].account_id
    assert Endpoints.resolve({}, codex_mock.base_url).usage_url == codex_mock.root_url + "/backend-api/wham/usage"
    await p.aclose()
