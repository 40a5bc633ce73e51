"""The teaching structure every chapter follows, checked on the chapters that follow it (CONFORMING).

A conforming chapter opens with "Learning goals" and a run-time line per profile, ends with
"Summary", "Exercises" and "References", has at least three exercises whose solutions are
code (which nbval runs in the smoke profile) behind a dropdown, cites its sources from
references.bib with {cite} and lists them with {bibliography}, and repeats no heading.
"""

from __future__ import annotations

import re
import sys

import nbformat
import pytest
from notebooks import ROOT, glued_keys, toc_files, toc_pages

sys.path.insert(0, str(ROOT / "book"))
from cdtl_book import timings  # noqa: E402  (the book's own helpers live next to its pages)

from cdtl.recorded_runs import PROVENANCE_KEYS  # noqa: E402

# The chapters that follow the conventions. Add a chapter here when it does; the list ends as every chapter.
CONFORMING = ["00_preface", "01_cold_start_data", "02_matrix_factorization", "03_language_model_encoders",
              "04_cross_domain_transfer", "05_new_items_and_domains", "06_transferable_sequential", "07_softmax_fusion",
              "08_multitask_transfer",
              "09_deployment"]

HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$", re.M)
DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{([\w-]+)\}[ \t]*(.*)\n((?::[\w-]+:.*\n)*)", re.M)
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
BIB_KEY = re.compile(r"^@\w+\{([^,\s]+),", re.M)
ENDING = ["Summary", "Exercises", "References"]


def _chapter(stem: str) -> list[nbformat.NotebookNode]:
    return nbformat.read(ROOT / "chapters" / f"{stem}.ipynb", as_version=4).cells


def _headings(cells: list[nbformat.NotebookNode]) -> list[tuple[int, int, str]]:
    """(cell index, level, text) of every markdown heading, outside fenced code."""
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            text = re.sub(r"^```.*?^```", "", cell.source, flags=re.M | re.S)
            found += [(index, len(m.group(1)), m.group(2)) for m in HEADING.finditer(text)]
    return found


def _options(block: str) -> dict[str, str]:
    return dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", block, re.M))


def _section(cells: list[nbformat.NotebookNode], title: str) -> list[nbformat.NotebookNode]:
    """The cells from the level-2 heading ``title`` to the next level-2 heading."""
    heads = [(index, text) for index, level, text in _headings(cells) if level == 2]
    start = next((index for index, text in heads if text == title), None)
    if start is None:
        pytest.fail(f"no '## {title}' section")
    end = next((index for index, _ in heads if index > start), len(cells))
    return cells[start:end]


def test_every_conforming_chapter_is_in_the_book():
    assert set(CONFORMING) <= {path.stem for path in toc_files()}


@pytest.mark.parametrize("stem", CONFORMING)
def test_learning_goals_and_run_times_open_the_chapter(stem: str):
    cells = _chapter(stem)
    levels = _headings(cells)
    assert levels[0][1] == 1, f"{stem}: the first heading is the chapter's title"
    second = [text for _, level, text in levels if level == 2]
    assert second[0] == "Learning goals", f"{stem}: the first section is {second[0]!r}, not 'Learning goals'"
    opening = "\n".join(c.source for c in cells[: _section_start(cells, second[1])] if c.cell_type == "markdown")
    for profile in timings.PROFILES:
        assert f"{{runtime}}`{profile}`" in opening, f"{stem}: no run-time line for the {profile} profile at the top"
        timings.runtime_text(timings.load(), stem, profile)  # measured (or explicitly not yet) in book/timings.json
    assert timings.load()["chapters"][stem]["smoke"].get("cpu"), f"{stem}: its smoke run time on a CPU is not measured"


def _section_start(cells: list[nbformat.NotebookNode], title: str) -> int:
    return next(index for index, level, text in _headings(cells) if level == 2 and text == title)


@pytest.mark.parametrize("stem", CONFORMING)
def test_summary_exercises_and_references_close_the_chapter(stem: str):
    second = [text for _, level, text in _headings(_chapter(stem)) if level == 2]
    assert second[-3:] == ENDING, f"{stem}: the last sections are {second[-3:]}, expected {ENDING}"


@pytest.mark.parametrize("stem", CONFORMING)
def test_exercises_have_runnable_solutions_behind_a_toggle(stem: str):
    cells = _section(_chapter(stem), "Exercises")
    exercises, solutions, open_solution = [], {}, None
    for cell in cells:
        if cell.cell_type == "code" and open_solution is not None:
            tags = set(cell.metadata.get("tags", []))
            assert not tags & {"nbval-skip", "raises-exception", "skip-execution"} and "NBVAL_SKIP" not in cell.source, \
                f"{stem}: a solution of {open_solution} is not run by nbval"
            solutions[open_solution] += 1
            continue
        if cell.cell_type != "markdown":
            continue
        for fence, name, argument, block in DIRECTIVE.findall(cell.source):
            options = _options(block)
            if name == "exercise":
                assert options.get("label"), f"{stem}: an exercise without a :label:"
                exercises.append(options["label"])
            elif name == "solution-start":
                assert "dropdown" in options.get("class", "").split(), f"{stem}: solution {argument} is not a dropdown"
                open_solution, solutions[argument.strip()] = argument.strip(), 0
            elif name == "solution-end":
                open_solution = None
            elif name == "solution":
                pytest.fail(f"{stem}: solution {argument} holds no code cell; use {{solution-start}} ... {{solution-end}}")
    assert open_solution is None, f"{stem}: {{solution-start}} {open_solution} is never ended"
    with_code = [label for label in exercises if solutions.get(label, 0) > 0]
    assert len(with_code) >= 3, f"{stem}: {len(with_code)} exercises with code solutions ({exercises}); at least 3"
    assert set(solutions) <= set(exercises), f"{stem}: solutions of unknown exercises {set(solutions) - set(exercises)}"


@pytest.mark.parametrize("stem", CONFORMING)
def test_sources_are_cited_from_the_one_bibliography(stem: str):
    cells = _chapter(stem)
    text = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    cited = {key.strip() for group in CITE.findall(text) for key in group.split(",")}
    known = set(BIB_KEY.findall((ROOT / "references.bib").read_text()))
    assert cited, f"{stem} cites nothing with {{cite}}"
    assert cited <= known, f"{stem} cites keys missing from references.bib: {sorted(cited - known)}"
    references = "\n".join(c.source for c in _section(cells, "References") if c.cell_type == "markdown")
    bibliographies = [_options(block) for _, name, _, block in DIRECTIVE.findall(references) if name == "bibliography"]
    assert bibliographies, f"{stem}: the References section has no {{bibliography}}"
    assert all(b.get("filter") == "docname in docnames" for b in bibliographies), \
        f"{stem}: the bibliography must list this chapter's citations only (:filter: docname in docnames)"


def test_every_bibliography_entry_is_cited_in_the_book():
    """references.bib holds only sources a page of the book cites (a chapter's markdown or a book/*.md page)."""
    texts = []
    for page in toc_pages():
        notebook, markdown = ROOT / f"{page}.ipynb", ROOT / f"{page}.md"
        if notebook.exists():
            texts += [cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "markdown"]
        elif markdown.exists():
            texts.append(markdown.read_text(encoding="utf-8"))
    cited = {key.strip() for group in CITE.findall("\n".join(texts)) for key in group.split(",")}
    uncited = sorted(set(BIB_KEY.findall((ROOT / "references.bib").read_text())) - cited)
    assert not uncited, f"references.bib entries no page cites (cite them where they are used, or remove them): {uncited}"


def test_reference_lists_have_distinct_label_prefixes():
    """Each chapter's list numbers its entries from 1, so two lists need distinct :labelprefix: values."""
    owners: dict[str, list[str]] = {}
    for stem in CONFORMING:
        references = "\n".join(c.source for c in _section(_chapter(stem), "References") if c.cell_type == "markdown")
        for _, name, _, block in DIRECTIVE.findall(references):
            if name == "bibliography":
                owners.setdefault(_options(block).get("labelprefix", ""), []).append(stem)
    clashes = {prefix or "(none)": stems for prefix, stems in owners.items() if len(stems) > 1}
    assert not clashes, f"chapters share a bibliography :labelprefix: {clashes}; the book build fails on duplicate labels"


@pytest.mark.parametrize("stem", CONFORMING)
def test_no_heading_is_repeated_or_malformed(stem: str):
    texts = [text for _, _, text in _headings(_chapter(stem))]
    repeated = sorted({text for text in texts if texts.count(text) > 1})
    assert not repeated, f"{stem}: repeated headings {repeated}"
    malformed = [text for text in texts if "#" in text]
    assert not malformed, f"{stem}: headings with a stray '#': {malformed}"


def test_bibliography_entries_are_complete():
    """Every entry has authors (or an organisation), a title and a year; keys are unique."""
    bib = (ROOT / "references.bib").read_text()
    keys = BIB_KEY.findall(bib)
    assert len(keys) == len(set(keys)), "duplicate keys in references.bib"
    for entry in re.split(r"\n(?=@)", bib)[1:]:
        key = BIB_KEY.match(entry).group(1)
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", entry, re.M), f"references.bib: {key} has no {field}"
        assert re.search(r"^\s*(booktitle|journal|publisher|howpublished|archiveprefix)\s*=", entry, re.M), \
            f"references.bib: {key} names no venue"


# --- every number on the page is recorded -------------------------------------------------------------------------

RECORD_CALL = re.compile(r"cdtl\.nb\.record\(\s*(f?)([\"'])(.*?)\2", re.S)
# a record call whose name is a variable (``for name in ("users", "items"): cdtl.nb.record(name, ...)``)
BARE_NAME_CALL = re.compile(r"cdtl\.nb\.record\(\s*[A-Za-z_]\w*\s*,")
STRING = re.compile(r"([\"'])([A-Za-z_]\w*)\1")
# a recorded run quoted from results/ (cdtl.recorded_runs.quote_run) records where it was measured under a prefix
QUOTE_CALL = re.compile(r"quote_run\(\s*([\"'])[^\"']+\1\s*,\s*(?:prefix\s*=\s*)?([\"'])([^\"']*)\2")
# a number as typed in prose: 0.383, 1,928, 266 (not part of a word, a version, a label or a path)
NUMBER = re.compile(r"(?<![\w.\-/])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w.]?\w)")


def _prose(cells: list[nbformat.NotebookNode]) -> str:
    """The chapter's markdown as a reader sees it, less code, math, roles, directives' options and links."""
    text = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    text = re.sub(r"^(`{3,}).*?^\1", lambda m: "" if not re.match(r"`{3,}\{(admonition|note|tip|important|warning)",
                                                                        m.group(0)) else m.group(0), text, flags=re.M | re.S)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)  # roles: glue, cite, numref, runtime ...
    text = re.sub(r"`[^`]*`", " ", text)  # inline code, commands
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", text, flags=re.S)  # math
    text = re.sub(r"^:[\w-]+:.*$", " ", text, flags=re.M)  # directive options
    return re.sub(r"\]\([^)]*\)", "]", text)  # link targets


def record_patterns(cells: list[nbformat.NotebookNode]) -> list[re.Pattern[str]]:
    """The names the chapter's code records, as patterns (an f-string's fields match any text).

    Where a record call names its key by a variable, every identifier-like string of the code
    may be a recorded name (the loop's names are strings somewhere in the cell).
    """
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    patterns = []
    if BARE_NAME_CALL.search(code):
        patterns += [re.compile(re.escape(name) + r"\Z") for name in sorted({m[1] for m in STRING.findall(code)})]
    for is_f, _, name in RECORD_CALL.findall(code):
        parts = re.split(r"\{[^{}]*\}", name) if is_f else [name]
        patterns.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
    for *_, prefix in QUOTE_CALL.findall(code):
        patterns += [re.compile(re.escape(prefix + key) + r"\Z") for key in PROVENANCE_KEYS]
    return patterns


def typed_numbers(prose: str, records: dict[str, object]) -> list[tuple[str, str]]:
    """(number as typed, a recorded name with that value at the typed digits) for each number typed where a key exists.

    Decimals with at least three digits after the point are compared with every recorded
    number rounded to those digits; whole numbers of three digits or more (commas allowed)
    with every whole recorded number. Shorter numbers (ratios, k, layers) are settings, not results.
    """
    values = {name: float(v) for name, v in records.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    found = []
    for whole, fraction in NUMBER.findall(prose):
        typed = float(whole.replace(",", "") + (fraction or ""))
        if fraction and len(fraction) - 1 >= 3:
            digits = len(fraction) - 1
            hits = [n for n, v in values.items() if round(v, digits) == round(typed, digits)]
        elif not fraction and len(whole.replace(",", "")) >= 3:
            hits = [n for n, v in values.items() if v.is_integer() and v == typed]
        else:
            continue
        if hits:
            found.append((whole + (fraction or ""), sorted(hits)[0]))
    return found


def test_a_typed_number_with_a_glue_key_is_found():
    prose = _prose([nbformat.v4.new_markdown_cell(
        "MF scores 0.356 against {glue:text}`pop:.3f`; 266 new items; k = 10; `cdtl run --set x=0.3561`; $0.356$")])
    assert typed_numbers(prose, {"mf": 0.35612, "pop": 0.2, "new_items": 266, "k": 10}) == [
        ("0.356", "mf"), ("266", "new_items")]
    assert typed_numbers(prose, {"mf": 0.3549}) == []


def test_record_patterns_match_f_string_names():
    cells = [nbformat.v4.new_code_cell('cdtl.nb.record(f"{model}_{cell}_low", x)\ncdtl.nb.record("new_items", 3)')]
    patterns = record_patterns(cells)
    assert any(p.match("mf_warm_old_low") for p in patterns) and any(p.match("new_items") for p in patterns)
    assert not any(p.match("mf_warm_old_high") for p in patterns)


def test_record_patterns_take_the_strings_of_a_chapter_that_records_by_variable():
    cells = [nbformat.v4.new_code_cell('for name in ("users", "items"):\n    cdtl.nb.record(name, 1)')]
    patterns = record_patterns(cells)
    assert any(p.match("users") for p in patterns) and not any(p.match("ratings") for p in patterns)
    assert not record_patterns([nbformat.v4.new_code_cell('x = "users"\ncdtl.nb.record("items", 1)')])[0].match("users")


def test_record_patterns_know_what_a_quoted_run_records():
    cells = [nbformat.v4.new_code_cell('run = quote_run("newitems_ml1m", "ml1m_")\nfew = quote_run("x", prefix="full_")')]
    patterns = record_patterns(cells)
    for name in ("ml1m_command", "ml1m_machine", "full_date"):
        assert any(p.match(name) for p in patterns), name
    assert not any(p.match("ml1m_wall") or p.match("x_command") for p in patterns)


# Chapters whose prose is checked against their records: every chapter, as each one records what it states.
RECORDED = CONFORMING


@pytest.mark.parametrize("stem", RECORDED)
def test_every_glued_key_is_recorded_by_the_chapters_code(stem: str):
    cells = _chapter(stem)
    patterns = record_patterns(cells)
    missing = sorted(key for key in glued_keys(cells) if not any(p.match(key) for p in patterns))
    assert not missing, f"{stem}: the prose glues keys no cdtl.nb.record call records: {missing}"


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", RECORDED)
def test_every_glued_key_exists_and_no_number_is_typed_where_one_does(stem: str):
    from notebooks import chapter_records

    cells = _chapter(stem)
    records = chapter_records(ROOT / "chapters" / f"{stem}.ipynb")
    missing = sorted(glued_keys(cells) - set(records))
    assert not missing, f"{stem}: glued keys that the run (or its results/ files) did not record: {missing}"
    typed = typed_numbers(_prose(cells), records)
    assert not typed, f"{stem}: numbers typed into the prose where a recorded value exists (glue them): {typed}"
