"""The test tree mirrors the package: every module of cdtl has its test file at the mirrored path."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cdtl"


def mirrored(module: Path) -> Path:
    """cdtl/a/b.py -> tests/a/test_b.py."""
    relative = module.relative_to(PACKAGE)
    return ROOT / "tests" / relative.parent / f"test_{relative.name}"


def test_every_module_has_its_test_file_at_the_mirrored_path():
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    missing = [str(p.relative_to(ROOT)) for p in modules if not mirrored(p).exists()]
    assert len(modules) > 90 and not missing, f"no test file at the mirrored path for {missing}"


def test_every_test_file_tests_something_and_says_what():
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        text = path.read_text()
        assert text.startswith('"""'), f"{path.relative_to(ROOT)} does not open with a sentence on what it checks"
        assert "def test_" in text, f"{path.relative_to(ROOT)} holds no test"
