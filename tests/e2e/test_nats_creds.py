"""NATS login with a credentials file (`--set auth=creds --set creds_file=PATH`), end to end:
a private nats-server in operator (decentralized JWT) mode with a memory resolver, and an
operator, accounts and users made here the way `nsc` makes them (NKeys from the `nkeys`
package, JWTs signed by hand). nats-py, connecting with the same .creds file, is the
independent client. The user's seed must never show in output or in Sluice's config."""

import asyncio
import base64
import json
import os
import time
import uuid

import nats
import nkeys
import pytest

from conftest import Sluice
from test_nats import servers  # noqa: F401  (the fixture: private nats-servers, stopped afterwards)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Key:
    """A fresh NKey of one role (operator, account or user)."""

    def __init__(self, prefix):
        self.kp = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))
        self.public = self.kp.public_key.decode()
        self.seed = self.kp.seed.decode()


def sign_jwt(issuer, subject, name, nats_claims):
    """A NATS JWT v2: header and claims in base64url without padding, signed by the issuer's
    ed25519 key over `header.payload`."""
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = {"jti": uuid.uuid4().hex.upper(), "iat": int(time.time()), "iss": issuer.public,
              "name": name, "sub": subject.public, "nats": {**nats_claims, "version": 2}}
    payload = b64url(json.dumps(claims).encode())
    signature = issuer.kp.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{b64url(signature)}"


NO_LIMITS = {"subs": -1, "data": -1, "payload": -1}
ACCOUNT = {"type": "account",
           "limits": {**NO_LIMITS, "imports": -1, "exports": -1, "wildcards": True, "conn": -1, "leaf": -1}}


def account(operator, name):
    key = Key(nkeys.PREFIX_BYTE_ACCOUNT)
    return key, sign_jwt(operator, key, name, ACCOUNT)


def user(acct, name):
    key = Key(nkeys.PREFIX_BYTE_USER)
    return key, sign_jwt(acct, key, name, {"type": "user", "pub": {}, "sub": {}, **NO_LIMITS})


def write_creds(path, jwt, key):
    """The .creds format `nsc generate creds` writes."""
    path.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{key.seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def trust(servers, tmp_path):  # noqa: F811
    """An operator-mode server trusting one operator, with a system account and an account APP
    preloaded in its memory resolver; returns (url, APP key, APP user's .creds, its JWT, its key)."""
    operator = Key(nkeys.PREFIX_BYTE_OPERATOR)
    sys_key, sys_jwt = account(operator, "SYS")
    app_key, app_jwt = account(operator, "APP")
    op_jwt = sign_jwt(operator, operator, "sluice-test-operator",
                      {"type": "operator", "system_account": sys_key.public})
    (tmp_path / "operator.jwt").write_text(op_jwt)
    proc, url = servers(config=(
        f'operator: "{tmp_path / "operator.jwt"}"\n'
        f"system_account: {sys_key.public}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f'  {sys_key.public}: "{sys_jwt}"\n'
        f'  {app_key.public}: "{app_jwt}"\n'
        "}\n"))
    assert proc.poll() is None, "nats-server did not start in operator mode"
    u_key, u_jwt = user(app_key, "app-user")
    creds = write_creds(tmp_path / "app-user.creds", u_jwt, u_key)
    return url, app_key, creds, u_jwt, u_key


async def _publisher(url, creds, subject, payload, until, timeout=30):
    """Publishes `payload` on `subject` every 0.2 s, logged in with the .creds file, until
    `until()` is true: a core subject keeps nothing, so it goes on until the reader has it."""
    nc = await nats.connect(url, user_credentials=str(creds), connect_timeout=5, max_reconnect_attempts=0)
    try:
        deadline = time.time() + timeout
        while not until():
            assert time.time() < deadline, "the reader never saw a message"
            await nc.publish(subject, payload)
            await nc.flush()
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


def publish_until(url, creds, subject, payload, until):
    asyncio.run(_publisher(url, creds, subject, payload, until))


def test_creds_login_reads_core_subject_and_keeps_the_seed_secret(trust, tmp_path):
    url, app_key, creds, u_jwt, u_key = trust
    s = Sluice(tmp_path)
    s("connection", "add", "nats", "jwtuser", "--url", url, "--set", "auth=creds", "--set", f"creds_file={creds}")
    test = s.run("connection", "test", "jwtuser")
    assert "reachable" in test.stdout, test.stdout + test.stderr
    listing = s("connection", "list")
    line = next(l for l in listing.splitlines() if l.startswith("jwtuser"))
    assert "credentials file" in line and str(creds) in line, line

    # A core subject, read live by `tail` while nats-py (same creds) publishes on it.
    subject = f"creds.{uuid.uuid4().hex[:8]}.orders"
    payload = b"\x00\xffcreds \xe2\x98\x83 " + os.urandom(16)
    tail = s.popen("tail", "jwtuser", subject, "--max-messages", "1", "--format", "jsonl")
    publish_until(url, creds, subject, payload, lambda: tail.poll() is not None)
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    [event] = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert base64.b64decode(event["payload"]) == payload
    assert event["bus"] == "nats" and event["connection"] == "jwtuser"
    assert event["properties"]["subject"] == subject

    # Captured into the lake with the same login, and found there by search.
    cap = s.popen("capture", "jwtuser", subject, "--max-messages", "1", "--json")
    publish_until(url, creds, subject, payload, lambda: cap.poll() is not None)
    cap_out, cap_err = cap.communicate(timeout=30)
    assert cap.returncode == 0, cap_err
    assert json.loads(cap_out)["captured"] == 1, cap_out
    [found] = s.jsonl("search", f"property.subject = '{subject}'", "--format", "jsonl")
    assert base64.b64decode(found["payload"]) == payload and found["connection"] == "jwtuser"

    # The seed (the secret) appears in no output and in nothing under SLUICE_CONFIG; neither
    # does the user JWT: the config names the file, it does not copy it.
    shown = test.stdout + test.stderr + listing + out + err + cap_out + cap_err
    assert u_key.seed not in shown and u_jwt not in shown
    files = [p for p in s.config.rglob("*") if p.is_file()]
    assert any(p.name == "config.toml" for p in files), files
    config_toml = (s.config / "config.toml").read_text()
    assert str(creds) in config_toml and "creds" in config_toml
    for p in files:
        data = p.read_bytes()
        assert u_key.seed.encode() not in data and u_jwt.encode() not in data, p


def test_creds_of_an_unknown_account_are_refused_without_showing_them(trust, tmp_path):
    url, app_key, creds, _, _ = trust
    # A user signed by an account the server's operator never issued (not in its resolver).
    operator = Key(nkeys.PREFIX_BYTE_OPERATOR)
    rogue_account, _ = account(operator, "ROGUE")
    r_key, r_jwt = user(rogue_account, "rogue-user")
    rogue = write_creds(tmp_path / "rogue.creds", r_jwt, r_key)

    async def refused():
        with pytest.raises(Exception):
            await nats.connect(url, user_credentials=str(rogue), connect_timeout=3, max_reconnect_attempts=0,
                               allow_reconnect=False)

    asyncio.run(refused())  # the server itself refuses these creds: not a Sluice quirk

    s = Sluice(tmp_path)
    s("connection", "add", "nats", "rogue", "--url", url, "--set", "auth=creds", "--set", f"creds_file={rogue}")
    t0 = time.time()
    p = s.run("connection", "test", "rogue", check=False)
    shown = p.stdout + p.stderr
    assert p.returncode != 0 and time.time() - t0 < 20, shown
    assert "authentication failed" in p.stderr and "rogue" in p.stderr, p.stderr
    assert url.removeprefix("nats://") in p.stderr, p.stderr
    assert r_key.seed not in shown and r_jwt not in shown, shown
    assert "panicked" not in shown
    listing = s("connection", "list")
    assert r_key.seed not in listing
    for f in (q for q in s.config.rglob("*") if q.is_file()):
        assert r_key.seed.encode() not in f.read_bytes(), f
    # The right user JWT with another key's seed: the server's nonce check refuses it, and
    # neither seed is shown.
    good_text = creds.read_text()
    good_seed = next(l for l in good_text.splitlines() if l.startswith("SU"))
    mixed = tmp_path / "mixed.creds"
    mixed.write_text(good_text.replace(good_seed, r_key.seed))
    s("connection", "add", "nats", "mixed", "--url", url, "--set", "auth=creds", "--set", f"creds_file={mixed}")
    p = s.run("connection", "test", "mixed", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr and "mixed" in p.stderr, p.stderr
    assert r_key.seed not in p.stdout + p.stderr and good_seed not in p.stdout + p.stderr
    # The same server still takes the good creds: the refusals are about the account and key.
    s("connection", "add", "nats", "good", "--url", url, "--set", "auth=creds", "--set", f"creds_file={creds}")
    assert "reachable" in s("connection", "test", "good")
