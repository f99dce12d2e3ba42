"""The service as a real process (`python3 -m upstream_api`): it refuses a bad
configuration with one JSON line listing every problem, and when it runs,
every line it writes (uvicorn's included) is JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import AUDIENCE, ISSUER, JwksServer, SigningKey, Tokens

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upstream_api"], cwd=ROOT, env={"PATH": os.environ.get("PATH", ""), **env}, capture_output=True, text=True, timeout=60)


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # raises on any non-JSON line


def test_refuses_to_start_listing_every_problem() -> None:
    result = run({"JWKS_URL": f"http://127.0.0.1:{free_port()}/api/auth/jwks", "JWT_ALGORITHMS": "HS256"})
    assert result.returncode == 1
    assert result.stderr == ""
    (line,) = json_lines(result.stdout)
    assert line["level"] == 60 and line["msg"] == "configuration invalid" and line["event"] == "config_invalid"
    problems = line["problems"]
    assert [p.split(" ")[0] for p in problems] == ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_ALGORITHMS:", "JWKS_URL:"], problems


def test_runs_with_json_lines_only(jwks_server: JwksServer, ed_key: SigningKey, rs_key: SigningKey) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "JWKS_URL": jwks_server.url,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    proc = subprocess.Popen([sys.executable, "-m", "upstream_api"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as res:
                    assert res.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "the service exited"
                assert time.monotonic() < deadline, "the service did not answer within 30 s"
                time.sleep(0.1)
        token = Tokens(ed_key, rs_key).make()
        req = urllib.request.Request(f"{base}/api/me", headers={"authorization": f"Bearer {token}", "x-request-id": "proc-1"})
        with urllib.request.urlopen(req, timeout=5) as res:
            assert json.load(res)["id"] == "user-123"
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/me", headers={"x-request-id": "proc-2"}), timeout=5)
            raise AssertionError("expected a 401")
        except urllib.error.HTTPError as err:
            assert err.code == 401
        # Not even a malformed request escapes as text, nor the bytes it carried.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /api/me?token=secret-in-a-bad-request HTTP/1.1 junk\r\n\r\n")
            s.recv(1024)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert stderr == ""
    lines = json_lines(stdout)
    assert any(l.get("logger", "").startswith("uvicorn") and "Uvicorn running on" in l["msg"] for l in lines), "uvicorn's own lines are JSON"
    assert lines[0]["msg"] == "starting" and lines[0]["jwks_keys"] == 2
    requests = [l for l in lines if l["msg"] == "request"]
    assert [r["reqId"] for r in requests if r["path"] == "/api/me"] == ["proc-1", "proc-2"]
    assert token not in stdout
    assert "secret-in-a-bad-request" not in stdout
    assert any(l["msg"] == "Invalid HTTP request received." and l["err"]["type"] for l in lines), "the protocol error is still reported"
