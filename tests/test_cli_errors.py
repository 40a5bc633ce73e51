"""The command line's one error boundary: every sub-command reports errors in a few lines, a traceback only on request."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from cdtl import cli


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable sub-command: (its words, its parser)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _leaves(sub, (*path, name))
    if not found and parser.get_default("func") is not None:
        found.append((path, parser))
    return found


def _argv(words: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
                   and a.dest != "help"]
    required = [opt for a in parser._actions if a.option_strings and a.required for opt in (a.option_strings[0], "x")]
    return [*words, *["x" for _ in positionals], *required]


def _patched(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """A parser whose every sub-command raises ``exc``; main() is made to use it."""
    parser = cli.build_parser()

    def boom(_: argparse.Namespace) -> int:
        raise exc

    leaves = _leaves(parser)
    for _, leaf in leaves:
        leaf.set_defaults(func=boom)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    return [(_argv(words, leaf), leaf) for words, leaf in leaves]


def test_every_sub_command_is_inside_the_boundary(monkeypatch, capsys):
    commands = _patched(monkeypatch, ValueError("config.yaml: key 'train.lr' must be a number"))
    assert len(commands) >= 4  # data list/fetch/info and run, and whatever is added later
    for argv, _ in commands:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err == "cdtl: error: config.yaml: key 'train.lr' must be a number\n", argv


@pytest.mark.parametrize("where", ["end", "start"])
def test_debug_anywhere_shows_the_traceback(monkeypatch, where):
    commands = _patched(monkeypatch, ValueError("boom"))
    argv = commands[0][0]
    argv = [*argv, "--debug"] if where == "end" else ["--debug", *argv]
    with pytest.raises(ValueError, match="boom"):
        cli.main(argv)


def test_cdtl_debug_shows_the_traceback(monkeypatch):
    commands = _patched(monkeypatch, ValueError("boom"))
    monkeypatch.setenv("CDTL_DEBUG", "1")
    with pytest.raises(ValueError, match="boom"):
        cli.main(commands[0][0])


def test_a_bug_is_one_line_that_asks_for_a_report(monkeypatch, capsys):
    commands = _patched(monkeypatch, AttributeError("'NoneType' object has no attribute 'shape'"))
    assert cli.main(commands[0][0]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cdtl: internal error: AttributeError: 'NoneType' object has no attribute 'shape'")
    assert "--debug" in err and "Traceback" not in err


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    commands = _patched(monkeypatch, KeyboardInterrupt())
    assert cli.main(commands[0][0]) == 130
    assert capsys.readouterr().err == "cdtl: interrupted\n"


def test_a_bad_cdtl_debug_value_is_reported(monkeypatch, capsys):
    monkeypatch.setenv("CDTL_DEBUG", "maybe")
    assert cli.main(["data", "list"]) == 2
    assert "CDTL_DEBUG='maybe' is not a yes/no value" in capsys.readouterr().err


def test_a_real_process_prints_no_traceback():
    result = subprocess.run([sys.executable, "-m", "cdtl.cli", "data", "info", "movielens-7m"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("cdtl: error: unknown dataset 'movielens-7m'") and "Traceback" not in result.stderr


def test_serve_index_that_is_not_json_names_the_option(capsys):
    assert cli.main(["serve", "no-bundle", "--index", "{kind: ivf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdtl: error: --index '{kind: ivf' is not a JSON object") and "Traceback" not in err


def test_export_over_an_earlier_bundle_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "cfg.yaml").write_text("kind: fusion\nexport: {}\n")
    assert cli.main(["export", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "bundle")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_to_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "bundle").write_text("not a folder")
    (tmp_path / "cfg.yaml").write_text("kind: fusion\nexport: {}\n")
    assert cli.main(["export", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "bundle"), "--overwrite"]) == 2
    assert "is a file; a bundle is a folder" in capsys.readouterr().err
