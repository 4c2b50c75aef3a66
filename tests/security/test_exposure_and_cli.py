"""Exposure rules (pure) and the `antiapi keys` command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from antiapi.security import cli
from antiapi.security.exposure import check_exposure, is_loopback, needs_keys
from antiapi.security.keys import hash_key


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_is_allowed_without_keys(host):
    assert is_loopback(host) and not needs_keys(host, False)
    assert check_exposure(host, False, 0) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", ""])
def test_other_addresses_need_a_key(host):
    assert not is_loopback(host) and needs_keys(host, False)
    msg = check_exposure(host, False, 0)
    assert msg is not None and "`antiapi keys create --name laptop`" in msg and "ssh -L" in msg
    assert check_exposure(host, False, 1) is None


def test_messages_name_the_exposure():
    assert check_exposure("0.0.0.0", False, 0).startswith("Listening on 0.0.0.0 makes antiapi reachable from every network")
    assert check_exposure("192.168.1.5", False, 0).startswith("Listening on 192.168.1.5 makes antiapi reachable from other machines")
    assert check_exposure("127.0.0.1", True, 0).startswith("A tunnel makes antiapi reachable from the internet")
    assert check_exposure("127.0.0.1", True, 2) is None


def test_keys_cli_create_list_revoke(tmp_path, capsys):
    cfg = SimpleNamespace(data_dir=tmp_path)
    out: list[str] = []
    assert cli.main(["create", "--name", "laptop", "--rpm", "30"], cfg, out=out.append) == 0
    key = out[2].strip()
    assert key.startswith("aa-") and len(key) == 46
    assert "only time it is shown" in "\n".join(out)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("antiapi.db*"))
    assert key.encode() not in raw and hash_key(key).encode() in raw

    out.clear()
    assert cli.main(["list"], cfg, out=out.append) == 0
    assert out[0].split() == ["ID", "NAME", "PREFIX", "CREATED", "LAST", "USED", "STATUS", "LIMITS"]
    assert out[1].split()[:3] == ["1", "laptop", key[:11] + "…"] and "active" in out[1] and "30/min" in out[1]
    assert key not in "\n".join(out)

    out.clear()
    assert cli.main(["revoke", "laptop"], cfg, out=out.append) == 0
    assert out == ["Revoked client key 1 (laptop). A running server refuses it within seconds."]
    out.clear()
    assert cli.main(["list", "--json"], cfg, out=out.append) == 0
    listed = json.loads(out[0])
    assert listed[0]["revoked"] is True and listed[0]["limits"] == {"requests_per_minute": 30, "tokens_per_day": None}

    assert cli.main(["revoke", "nope"], cfg, out=out.append) == 2
    assert "no client key with id or name 'nope'" in capsys.readouterr().err
    assert cli.main(["create", "--name", "x", "--rpm", "-1"], cfg, out=out.append) == 2
    assert cli.main(["bogus"], cfg, out=out.append) == 2
