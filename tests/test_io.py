"""Writes are atomic and read-back hash-checked (cdtl.io); a scan of the source finds any raw write, so a new one fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cdtl"

# Methods that write a file whatever object they are called on.
WRITE_METHODS = {"write_text", "write_bytes", "to_csv", "to_parquet", "to_json", "to_pickle", "to_feather",
                 "savefig", "touch", "save_pretrained", "save_file"}
# module.function calls that write a file.
WRITE_FUNCTIONS = {("np", "save"), ("np", "savez"), ("np", "savez_compressed"), ("np", "savetxt"),
                   ("torch", "save"), ("json", "dump"), ("pickle", "dump"), ("yaml", "dump"), ("yaml", "safe_dump"),
                   ("shutil", "copy"), ("shutil", "copy2"), ("shutil", "copyfile"), ("shutil", "copytree"),
                   ("shutil", "move"), ("os", "rename"), ("os", "replace")}
# The module where writes are implemented, once.
HELPERS = {"io.py"}
# Raw writes that never touch a user's file, each with the reason.
ALLOWED = {
    ("data/download.py", "_download_url"): "streams into a private temporary folder; only a verified file is moved out",
    ("data/download.py", "_obtain_archive"): "renames a verified download out of its temporary folder (one rename)",
    ("data/hub.py", "_download_checked"): "renames a download out of its private temporary folder once its hash is verified",
    ("data/amazon_pair.py", "_gzip_csv"): "gzips CSV into an in-memory buffer, whose bytes atomic_write then writes",
    ("serve/bundle.py", "_table_bytes"): "writes Parquet into an in-memory buffer, whose bytes atomic_write then writes",
    ("serve/server.py", "start"): "the service's own log in a private temporary folder, streamed while it runs",
    ("folderlock.py", "_locked"): "a run's lock file, locked in place (a rename would lose the lock); it records only "
                                  "who holds the folder and is removed when the run ends",
}


def _opens_for_writing(call: ast.Call) -> bool:
    func = call.func
    is_open = (isinstance(func, ast.Name) and func.id == "open") or (isinstance(func, ast.Attribute) and func.attr == "open")
    if not is_open:
        return False
    modes = [kw.value for kw in call.keywords if kw.arg == "mode"]
    if isinstance(func, ast.Name) and len(call.args) > 1:
        modes.append(call.args[1])
    elif isinstance(func, ast.Attribute) and call.args:  # Path.open("w"), tarfile.open(path, "w")
        modes.extend(call.args[:2])
    return any(isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+") for m in modes)


def _is_raw_write(call: ast.Call) -> str | None:
    func = call.func
    if _opens_for_writing(call):
        return "open(..., 'w')"
    if isinstance(func, ast.Name) and func.id in WRITE_METHODS:
        return func.id
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and (func.value.id, func.attr) in WRITE_FUNCTIONS:
            if func.attr == "dump" or func.attr == "safe_dump":
                if len(call.args) < 2 and not any(kw.arg == "stream" for kw in call.keywords):
                    return None  # yaml.dump(obj) returns a string
            return f"{func.value.id}.{func.attr}"
        if func.attr in WRITE_METHODS:
            return f".{func.attr}"
        if func.attr == "ZipFile" or (isinstance(func.value, ast.Name) and func.value.id == "zipfile"):
            mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and mode.value in ("w", "a", "x"):
                return "zipfile.ZipFile(..., 'w')"
    return None


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def raw_writes(source: str, filename: str) -> list[tuple[int, str, str]]:
    """(line, function, call) of every write in ``source`` that is not inside an ``atomic_write(...)`` call."""
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, function: str, inside_helper: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Call):
            what = _is_raw_write(node)
            if what and not inside_helper:
                found.append((node.lineno, function, what))
            inside_helper = inside_helper or _name(node) in ("atomic_write", "save_tensors")
        if isinstance(node, (ast.With, ast.AsyncWith)):  # with atomic_directory(...) as tmp: writes into tmp
            inside_helper = inside_helper or any(
                isinstance(item.context_expr, ast.Call) and _name(item.context_expr) == "atomic_directory"
                for item in node.items)
        for child in ast.iter_child_nodes(node):
            visit(child, function, inside_helper)

    visit(ast.parse(source, filename), "<module>", False)
    return found


def test_the_scanner_finds_raw_writes_and_accepts_atomic_ones():
    source = '''
def bad(path, df, tensors):
    path.write_text("x")
    open(path, "w").write("x")
    with open(path, mode="ab") as fh: pass
    df.to_csv(path)
    save_file(tensors, path)
    json.dump({}, fh)
    np.save(path, df)
    os.replace(path, path)

def good(path, df):
    atomic_write(path, "x")
    atomic_write(path, lambda tmp: df.to_parquet(tmp))
    open(path).read()
    open(path, "rb")
    yaml.safe_dump({})
    df.rename(columns={})
    with atomic_directory(path) as tmp:
        df.to_csv(tmp / "a.csv")
'''
    found = raw_writes(source, "<test>")
    assert [what for _, _, what in found] == [".write_text", "open(..., 'w')", "open(..., 'w')", ".to_csv", "save_file",
                                              "json.dump", "np.save", "os.replace"]
    assert {function for _, function, _ in found} == {"bad"}


def test_no_raw_write_in_the_package():
    offenders = []
    used = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in HELPERS:
            continue
        for line, function, what in raw_writes(path.read_text(encoding="utf-8"), str(path)):
            if (relative, function) in ALLOWED:
                used.add((relative, function))
                continue
            offenders.append(f"cdtl/{relative}:{line} in {function}(): {what}")
    assert not offenders, ("raw writes (use cdtl.io.atomic_write, or cdtl.tensorfile.save_tensors):\n  "
                           + "\n  ".join(offenders))
    assert used == set(ALLOWED), f"stale entries in ALLOWED: {sorted(set(ALLOWED) - used)}"


@pytest.mark.parametrize("crash_at", ["before", "midway"])
def test_a_crash_mid_write_leaves_the_old_file_whole(tmp_path, crash_at):
    from cdtl.io import atomic_write

    path = tmp_path / "results.json"
    atomic_write(path, '{"old": true}')

    def crashing(tmp: Path) -> None:
        if crash_at == "midway":
            tmp.write_text('{"new": tr')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crashing)
    assert path.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary file left


def test_a_saved_language_model_lands_whole_and_keeps_the_folders_other_files(tmp_path):
    from cdtl.encoders import TextEncoder
    from cdtl.models.two_tower import TwoTower

    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "NOTES.md").write_text("mine")
    model = TwoTower(freeze_layers=6, max_length=16, max_history=3)
    assert model.save_pretrained(folder) == folder
    assert (folder / "NOTES.md").read_text() == "mine" and (folder / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    vectors = TextEncoder(model=str(folder)).encode(["Heat (1995)"])
    assert vectors.shape == (1, 384)


def test_a_failed_folder_write_leaves_the_old_folder_and_a_merge_keeps_its_other_files(tmp_path):
    from cdtl.io import atomic_directory

    target = tmp_path / "bundle"
    with atomic_directory(target) as tmp:
        (tmp / "a.json").write_text("1")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "a.json").write_text("2")
        raise RuntimeError("crash")
    assert (target / "a.json").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    with atomic_directory(target, merge=True) as tmp:
        (tmp / "b.json").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["a.json", "b.json"]
    with atomic_directory(target) as tmp:  # without merge the folder is replaced whole
        (tmp / "c.json").write_text("4")
    assert sorted(p.name for p in target.iterdir()) == ["c.json"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"), atomic_directory(tmp_path / "file"):
        pass


def test_read_back_is_hash_checked_and_a_damaged_file_is_named_and_kept(tmp_path):
    from cdtl.io import CorruptFileError, atomic_write, bytes_hash, check_hash, file_hash, move_aside, read_json

    path = atomic_write(tmp_path / "m.json", '{"a": 1}')
    assert file_hash(path) == bytes_hash(b'{"a": 1}') and len(file_hash(path)) == 64
    check_hash(path, file_hash(path), what="the metrics")
    assert read_json(path, what="the metrics") == {"a": 1}
    with pytest.raises(CorruptFileError, match=r"m.json: the metrics is damaged .*; run again"):
        check_hash(path, bytes_hash(b"other"), what="the metrics", fix="run again")
    with pytest.raises(CorruptFileError, match="has no recorded sha256"):
        check_hash(path, None, what="the metrics")
    with pytest.raises(CorruptFileError, match="the metrics is missing"):
        check_hash(tmp_path / "gone.json", "0" * 64, what="the metrics")
    path.write_text('{"a": ')
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        read_json(path, what="the metrics")
    first, second = move_aside(path), None
    path.write_text("again")
    second = move_aside(path)
    assert not path.exists() and first != second and first.read_text() == '{"a": ' and second.read_text() == "again"
    assert first.name.startswith("m.json.bad-")
