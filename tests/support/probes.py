"""Shared by the bad-input probes: a deadline per probe, and the checks that make an error "clear"."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail a probe that runs longer than ``seconds`` (a hang is a finding, never a stuck test run)."""

    def expire(*_: object) -> None:
        raise TimeoutError(f"probe still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_clear(text: str, *needles: str, max_lines: int = 4) -> None:
    """A clear error: no traceback, a few lines, and it says each of ``needles`` (the file, key, fix...)."""
    assert "Traceback" not in text, text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert 1 <= len(lines) <= max_lines, f"{len(lines)} lines:\n{text}"
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"


def cli(capsys: pytest.CaptureFixture, argv: Sequence[str], *needles: str, code: int = 2, max_lines: int = 4,
        seconds: float = 120) -> str:
    """Run ``cdtl argv`` in-process; it must exit ``code`` with a clear error naming ``needles``."""
    from cdtl.cli import main

    with deadline(seconds):
        got = main(list(argv))
    captured = capsys.readouterr()
    assert got == code, f"exit {got}, expected {code}\nstdout: {captured.out}\nstderr: {captured.err}"
    if code:
        before, marker, message = captured.err.partition("cdtl: error: ")
        assert marker, captured.err
        assert all("%|" in line or not line.strip() for line in before.splitlines()), captured.err  # progress bars only
        assert_clear(marker + message, *needles, max_lines=max_lines)
        return marker + message
    return captured.out


def cli_process(argv: Sequence[str], env: dict[str, str], *, seconds: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m cdtl.cli argv`` as a real process (its own interpreter, exit code and stderr)."""
    return subprocess.run([sys.executable, "-m", "cdtl.cli", *argv], capture_output=True, text=True, timeout=seconds,
                          env=env, cwd=ROOT)


def damage(path: Path, how: str) -> None:
    """Damage a file the way disks and people do: flip a bit near the end, truncate, garble, empty or delete it."""
    payload = bytearray(path.read_bytes())
    if how == "flip":
        payload[-2] ^= 0x40
        path.write_bytes(bytes(payload))
    elif how == "truncate":
        path.write_bytes(bytes(payload[: len(payload) // 2]))
    elif how == "garbage":
        path.write_bytes(b"\x00\x01garbage")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "delete":
        path.unlink()
    else:
        raise ValueError(f"unknown damage {how!r}")


@contextlib.contextmanager
def lock_held_elsewhere(path: Path, *, beside: bool = False) -> Iterator[subprocess.Popen]:
    """``path`` claimed by another process (a run or an export still at work) for the length of the block.

    The process takes the lock every run takes (``cdtl.folderlock.claim``; ``beside`` for a bundle's), says
    "held" and keeps it until its stdin closes; it imports no torch, so it starts in a fraction of a second.
    """
    script = (f"import sys; from cdtl import folderlock; folderlock.claim(sys.argv[1], beside={beside}); "
              "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "held", f"the holder process could not claim {path}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
