"""The README's Serving section and the OpenAPI examples run as written, against a real server, with ids the bundle has.

The server runs on a toy bundle whose ids are renamed to the ones the README's requests
use (a warm user, source items), so each line is sent exactly as written: by the real
``curl`` when it is installed, and always as the same HTTP request made from Python (the
method, body and headers curl sends, its form content type included). A second test
checks the README's ids against the data of the bundle its export line makes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servekit import N_USERS, TOKEN, renamed, toy_data, toy_trained

from cdtl.data import cold_start_split
from cdtl.serve import schemas as S
from cdtl.serve.pack import pack_bundle
from cdtl.serve.server import ServiceProcess

README = Path(__file__).resolve().parents[2] / "README.md"
SCORER = {"user": "mf", "history": "bridge"}  # a warm user's path, a new user's by source history


def serving_blocks() -> list[list[str]]:
    """The lines of each bash code block of the README's Serving section."""
    section = README.read_text().split("\n## Serving\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0].splitlines() for block in section.split("```bash\n")[1:]]


def serving_block() -> list[str]:
    """The first block: export a bundle, serve it, ask it."""
    return serving_blocks()[0]


def curl_lines() -> list[str]:
    """Every ``curl`` line of the section, in every block."""
    return [line for block in serving_blocks() for line in block if line.startswith("curl ")]


def translate(line: str, base: str, env: dict[str, str]) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, url, body, headers) of the request curl makes for ``line`` (its options -s, -d, -H, -X)."""
    variable = re.compile(r"\$\{?(\w+)\}?")  # as the shell expands them (the README quotes none in single quotes)
    words = [variable.sub(lambda m: env[m.group(1)], w) for w in shlex.split(line, comments=True)[1:]]
    method, url, body, headers = None, None, None, {}
    words = iter(words)
    for word in words:
        if word == "-s":
            continue
        if word in ("-d", "--data"):
            body = next(words).encode()
        elif word in ("-H", "--header"):
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-X", "--request"):
            method = next(words)
        elif word.startswith("-"):
            raise AssertionError(f"README curl option {word!r} is not translated here: {line}")
        else:
            url = re.sub(r"^(https?://)?localhost:\d+", base, word)
    if body is not None and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    return method or ("POST" if body is not None else "GET"), url, body, headers


def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def expected(line: str) -> tuple[int, str | None]:
    """(status, scorer) the line's request must get: 201 for a new item, else 200 and the scorer its body implies."""
    body = json.loads(shlex.split(line, comments=True)[shlex.split(line, comments=True).index("-d") + 1])
    if "/items" in line:
        return 201, None
    return 200, next(SCORER[key] for key in SCORER if key in body)


def openapi_examples() -> dict[str, list[dict]]:
    """The request examples the OpenAPI document shows, by endpoint."""
    return {path: model.model_config["json_schema_extra"]["examples"]
            for path, model in (("/recommend", S.RecommendRequest), ("/similar-items", S.SimilarRequest))}


def readme_ids() -> tuple[list[str], list[str], list[str], list[str]]:
    """(users, history items, new item ids, target items) the README's curl lines and the OpenAPI examples send."""
    users, history, new = [], [], []
    bodies = []
    for line in curl_lines():
        words = shlex.split(line, comments=True)
        body = json.loads(words[words.index("-d") + 1])
        new += [body["item"]] if "/items" in line else []
        bodies += [] if "/items" in line else [body]
    for body in bodies + openapi_examples()["/recommend"]:
        users += [body["user"]] if "user" in body else []
        history += body.get("history", [])
    targets = [body["item"] for body in openapi_examples()["/similar-items"] if "item" in body]
    return list(dict.fromkeys(users)), list(dict.fromkeys(history)), new, targets


def _warm_rename(users: list[str]) -> dict[str, str]:
    """Toy users to rename to ``users`` so that each stays warm (keeps target history) after the cold split."""
    chosen: dict[str, str] = {}
    for name in users:
        for n in range(N_USERS):
            trial = {**chosen, f"u{n:02d}": name}
            if f"u{n:02d}" in chosen:
                continue
            split = cold_start_split(renamed(toy_data(), trial), "books", "films", 0.3, seed=0)
            if name not in set(split.val_users) | set(split.test_users):
                chosen = trial
                break
    assert set(chosen.values()) == set(users), "no toy user stays warm under the README's ids"
    return chosen


@pytest.mark.slow
def test_every_curl_line_of_the_serving_section_runs_as_written(tmp_path):
    lines = curl_lines()
    assert len(lines) >= 3 and any('"history"' in line for line in lines) and any('"user"' in line for line in lines)
    users, history, _, targets = readme_ids()
    items = {**{f"b{n}": item for n, item in enumerate(history)}, **{f"f{n}": item for n, item in enumerate(targets)}}
    bundle = pack_bundle(tmp_path / "readme", toy_trained(users=_warm_rename(users), items=items))
    env = {**os.environ, "CDTL_SERVE_TOKEN": TOKEN}
    curl = shutil.which("curl")
    with ServiceProcess(bundle, token=TOKEN, ready_timeout=240) as svc:
        for line in lines:
            status, scorer = expected(line)
            got, answer = send(*translate(line, svc.url, env))
            assert got == status, (line, answer)
            if scorer is not None:
                assert answer["scorer"] == scorer and not answer["unknown_items"], (line, answer)
            if curl is None:
                continue
            shell = re.sub(r"localhost:\d+", svc.url.removeprefix("http://"), line, count=1)
            shell = shell.replace("curl ", "curl -w '\\n%{http_code}' ", 1)
            done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=60)
            text, _, code = done.stdout.rpartition("\n")
            assert int(code) == (409 if status == 201 else status), (line, done.stdout)  # the item exists by now
            if scorer is not None:
                assert json.loads(text)["scorer"] == scorer, (line, text)
        for path, bodies in openapi_examples().items():  # the OpenAPI document's examples run as shown too
            for body in bodies:
                status, answer = svc.post(path, body)
                assert status == 200 and answer["items"], (path, body, answer)
                scorer = next((SCORER[key] for key in SCORER if key in body), None)
                assert path != "/recommend" or (answer["scorer"] == scorer and not answer["unknown_items"]), answer


def test_the_readme_ids_are_ids_of_the_bundle_it_exports():
    from cdtl.experiments import fusion, load_config
    from cdtl.experiments.fusion_data import prepare

    export = shlex.split(next(line for line in serving_block() if line.startswith("cdtl export ")), comments=True)
    config, bundle = export[2], export[export.index("--out") + 1]
    assert all(bundle in line for line in serving_block() if line.startswith("cdtl serve "))
    fd = prepare(fusion.resolve(load_config(README.parent / config)))
    users, history, new, examples = readme_ids()
    rows = {u: r for r, u in enumerate(fd.cd.users.ids)}
    for user in users:  # a warm user: the bundle has target training history for them
        assert user in rows and fd.target_len[rows[user]] > 0, user
    sources, targets = set(fd.cd.source_items.ids), set(fd.cd.target_items.ids)
    assert history and set(history) <= sources, set(history) - sources
    assert not set(new) & (sources | targets)
    assert set(examples) <= targets, set(examples) - targets
