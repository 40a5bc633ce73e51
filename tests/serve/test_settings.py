"""`cdtl serve` settings from flags or CDTL_* variables, its bad-input refusals, and the app factory under `uvicorn
--workers 2`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from servekit import TOKEN, toy_bundle

from cdtl.cli import main
from cdtl.env import EnvError
from cdtl.serve.settings import VARIABLES, ServeSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for variable in [*VARIABLES.values(), "CDTL_SERVE_TOKEN"]:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("settings") / "toy")


def test_settings_come_from_the_environment_and_a_flag_wins(monkeypatch):
    monkeypatch.setenv("CDTL_BUNDLE", "/srv/bundle")
    monkeypatch.setenv("CDTL_HOST", "0.0.0.0")
    monkeypatch.setenv("CDTL_PORT", "9001")
    monkeypatch.setenv("CDTL_LOG_LEVEL", "INFO")
    monkeypatch.setenv("CDTL_ACCESS_LOG", "yes")
    monkeypatch.setenv("CDTL_ITEMS_STORE", "/items/items.jsonl")
    monkeypatch.setenv("CDTL_INDEX", '{"kind": "ivf", "nprobe": 8}')
    s = ServeSettings.resolve()
    assert (s.bundle, s.host, s.port, s.log_level, s.access_log) == ("/srv/bundle", "0.0.0.0", 9001, "info", True)
    assert s.items_store == "/items/items.jsonl" and s.index == {"kind": "ivf", "nprobe": 8} and not s.read_only
    s = ServeSettings.resolve(bundle="b", port="0", access_log=False, index="exact")
    assert (s.bundle, s.port, s.access_log, s.index) == ("b", 0, False, {"kind": "exact"})


def test_defaults_without_flags_or_variables():
    s = ServeSettings.resolve(bundle="b")
    assert (s.host, s.port, s.log_level, s.access_log, s.read_only, s.items_store) == (
        "127.0.0.1", 8000, "warning", False, False, None)


@pytest.mark.parametrize("variable, value, message", [
    ("CDTL_PORT", "eighty", "$CDTL_PORT='eighty' is not a port number"),
    ("CDTL_PORT", "70000", "$CDTL_PORT=70000 is not a port number"),
    ("CDTL_LOG_LEVEL", "loud", "$CDTL_LOG_LEVEL='loud' is not a log level; use one of critical, error, warning"),
    ("CDTL_ACCESS_LOG", "maybe", "CDTL_ACCESS_LOG='maybe' is not a yes/no value"),
    ("CDTL_INDEX", "{nope", "$CDTL_INDEX '{nope' is not a JSON object"),
])
def test_a_bad_variable_is_named_with_what_it_accepts(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(EnvError) as err:
        ServeSettings.resolve(bundle="b")
    assert message in str(err.value)


def test_no_bundle_anywhere_is_refused(capsys):
    assert main(["serve", "--read-only"]) == 2
    assert "no bundle to serve: give the bundle folder (cdtl serve BUNDLE) or set CDTL_BUNDLE" in capsys.readouterr().err


def _error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_a_bundle_path_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-such-bundle"
    assert main(["serve", str(missing), "--read-only", "--port", "0"]) == 2
    lines = _error_lines(capsys)
    assert len(lines) <= 2 and lines[0] == f"cdtl: error: {missing}: no bundle folder there"


def test_a_bundle_named_by_cdtl_bundle_that_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDTL_BUNDLE", str(tmp_path / "gone"))
    assert main(["serve", "--read-only", "--port", "0"]) == 2
    assert "gone: no bundle folder there" in capsys.readouterr().err


def test_a_port_in_use(bundle, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(bundle), "--read-only", "--port", str(port)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) <= 2 and lines[0].startswith(f"cdtl: error: cannot listen on 127.0.0.1:{port}: Address already in use")


@pytest.mark.parametrize("kind", ["missing", "folder", "binary"])
def test_an_unreadable_token_file(bundle, tmp_path, capsys, kind):
    token_file = tmp_path / "token"
    if kind == "folder":
        token_file.mkdir()
    elif kind == "binary":
        token_file.write_bytes(b"\xff\xfe\x00token")
    assert main(["serve", str(bundle), "--token-file", str(token_file), "--port", "0"]) == 2
    lines = _error_lines(capsys)
    assert len(lines) <= 2 and lines[0].startswith(f"cdtl: error: --token-file {token_file}: ")
    assert ("cannot read the token file" in lines[0]) or ("not a text file" in lines[0])


def test_a_token_file_named_by_the_environment_is_named_as_such(bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDTL_SERVE_TOKEN_FILE", str(tmp_path / "absent"))
    assert main(["serve", str(bundle), "--port", "0"]) == 2
    assert f"$CDTL_SERVE_TOKEN_FILE {tmp_path / 'absent'}: cannot read the token file" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.slow
def test_the_app_factory_serves_under_uvicorn_with_two_workers(bundle, tmp_path):
    port = _free_port()
    env = {**os.environ, "CDTL_BUNDLE": str(bundle), "CDTL_SERVE_TOKEN": TOKEN, "CDTL_PROGRESS": "0",
           "CDTL_ITEMS_STORE": str(tmp_path / "items.jsonl"), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "uvicorn.log", "wb")
    child = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "cdtl.serve.server:create_app_from_env",
                              "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"],
                             stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline, ready = time.monotonic() + 240, False
        while time.monotonic() < deadline and child.poll() is None and not ready:
            try:
                ready = _get(f"http://127.0.0.1:{port}/ready")[0] == 200
            except OSError:
                time.sleep(0.5)
        assert ready, (tmp_path / "uvicorn.log").read_text(errors="replace")
        answered = 0
        for _ in range(400):  # bounded: whichever worker answers, from its own copy of the bundle
            status, answer = _get(f"http://127.0.0.1:{port}/recommend", {"user": "u01", "k": 3})
            if status == 503:  # the other worker is still loading its copy: not ready is not an error
                time.sleep(0.2)
                continue
            assert status == 200 and len(answer["items"]) == 3, answer
            answered += 1
            if answered == 40:
                break
        assert answered == 40
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
        log.close()
