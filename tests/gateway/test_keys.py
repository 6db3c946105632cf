"""The keys file, its CLI, token buckets and the usage ledger (no servers)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.key_store import ApiKey, KeyStore, hash_secret, read_keys
from gateway.limits import Ledger, TokenBucket
from lumen.common.v1 import common_pb2
from tests.gateway.conftest import add_key
from tools.suite import ROOT


def run_cli(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if env_file is not None:
        env["LUMEN_GATEWAY_KEYS_FILE"] = str(env_file)
    return subprocess.run(
        [sys.executable, "-m", "gateway.keys", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_cli_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    done = run_cli(
        "create", "--id", "team-a", "--services", "nlp,embeddings", "--rate", "5", "--burst", "10", "--tokens", "1000",
        env_file=path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("lk_") and len(secret) > 40
    text = path.read_text()
    assert secret not in text and secret not in done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (key,) = read_keys(path)
    assert key.sha256 == hash_secret(secret)
    assert key.services == {"nlp", "embeddings"}
    assert (key.rate_per_s, key.burst, key.tokens_per_period, key.admin) == (5.0, 10, 1000, False)
    assert KeyStore(path).find(secret) == key

    listed = run_cli("--file", str(path), "list")
    assert "team-a" in listed.stdout and secret not in listed.stdout
    again = run_cli("--file", str(path), "create", "--id", "team-a", "--services", "all")
    assert again.returncode != 0 and "already exists" in again.stderr
    wrong = run_cli("--file", str(path), "create", "--id", "team-b", "--services", "audio")
    assert wrong.returncode != 0
    assert run_cli("--file", str(path), "revoke", "--id", "team-a").returncode == 0
    assert read_keys(path) == []


def test_store_rejects_wrong_keys_and_follows_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = add_key(path, "first")
    store = KeyStore(path, reload_s=0)
    assert store.find(first) is not None
    assert store.find(first + "x") is None
    assert store.find("") is None
    second = add_key(path, "second", admin=True)
    assert store.find(second).id == "second"  # picked up without a restart
    path.write_text("{broken")
    assert store.find(second).id == "second"  # a broken file keeps the keys already loaded


def test_invalid_key_files_are_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry = {"id": "a", "sha256": "0" * 64, "services": ["nlp"]}
    for bad in (
        {"keys": [entry, entry]},
        {"keys": [{**entry, "services": ["audio"]}]},
        {"keys": [{**entry, "sha256": "short"}]},
        {"keys": [{**entry, "key": "plain text"}]},
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            KeyStore(path)


def test_token_bucket_allows_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3)
    start = bucket.stamp
    assert [bucket.take(start) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(start) == pytest.approx(0.5)  # one token every 1/2 s
    assert bucket.take(start + 0.5) == 0.0
    assert bucket.take(start + 0.5) > 0.0
    assert bucket.take(start + 100) == 0.0  # refills up to capacity only
    assert [bucket.take(start + 100) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(start + 100) > 0.0


def test_ledger_quota_per_period() -> None:
    now = [1_000_000.0]
    ledger = Ledger(clock=lambda: now[0])
    key = ApiKey(id="k", sha256="0" * 64, period_s=100, calls_per_period=2, tokens_per_period=10)
    method = "/lumen.embeddings.v1.EmbeddingService/Embed"
    assert ledger.check_quota(key) is None
    ledger.admit(key, method)
    ledger.settle(key, method, True, common_pb2.Usage(input_tokens=4))
    assert ledger.check_quota(key) is None
    ledger.admit(key, method)
    ledger.settle(key, method, False, None)
    refusal = ledger.check_quota(key)
    assert refusal is not None and refusal.reason == "calls"
    assert refusal.retry_after_s == pytest.approx(100.0)  # the period is aligned: 1,000,000 is a multiple of 100
    period = ledger.period(key)
    assert (period.calls, period.methods[method].errors, period.tokens) == (2, 1, 4)
    now[0] += 100  # next period: counts start again
    assert ledger.check_quota(key) is None and ledger.period(key).calls == 0

    tokens = ApiKey(id="t", sha256="0" * 64, period_s=100, tokens_per_period=10)
    ledger.admit(tokens, method)
    ledger.settle(tokens, method, True, common_pb2.Usage(input_tokens=7, output_tokens=3))
    assert ledger.check_quota(tokens).reason == "tokens"


def test_key_fields_are_checked_by_type(tmp_path: Path) -> None:
    """A string "false" must not grant admin (it is truthy); numbers must be numbers."""
    path = tmp_path / "keys.json"
    entry = {"id": "a", "sha256": "0" * 64, "services": ["nlp"]}
    for field, value in (
        ("admin", "false"),
        ("admin", 0),
        ("burst", "20"),
        ("burst", True),
        ("rate_per_s", float("nan")),
        ("tokens_per_period", 1.5),
        ("services", "nlp"),
        ("services", [1]),
        ("id", 7),
    ):
        path.write_text(json.dumps({"keys": [{**entry, field: value}]}))
        with pytest.raises(ValueError, match=field if field != "rate_per_s" else "limits"):
            KeyStore(path)
    for bad in ('{"keys": {}}', "[]", '{"keys": ["a"]}'):
        path.write_text(bad)
        with pytest.raises(ValueError):
            KeyStore(path)


def test_a_wrongly_typed_reload_keeps_the_previous_keys_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    secret = add_key(path, "team-a")
    store = KeyStore(path, reload_s=0)
    entries = json.loads(path.read_text())
    entries["keys"][0]["admin"] = "false"
    path.write_text(json.dumps(entries) + " ")  # another size: the store sees a change
    with caplog.at_level("ERROR", logger="gateway.key_store"):
        found = store.find(secret)
    assert found is not None and found.admin is False
    (line,) = [r.getMessage() for r in caplog.records if "not reloaded" in r.getMessage()]
    assert "admin must be bool, not str 'false'" in line and "keeping 1 keys" in line
