"""The run times the book shows: a chapter's ``{runtime}`` line and the ``{execution-timings}`` table."""

from __future__ import annotations

import posixpath
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole

from cdtl_book import timings

LOGGER = logging.getLogger(__name__)
DOCS_KEY = "cdtl_timings_docs"  # env attribute: the pages holding a timings table


def _stem(docname: str) -> str:
    return posixpath.basename(docname)


class RuntimeRole(SphinxRole):
    """``{runtime}`smoke``` -> this chapter's measured run time in that profile, from book/timings.json."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        self.env.note_dependency(str(timings.TIMINGS))
        try:
            text = timings.runtime_text(timings.load(), _stem(self.env.docname), self.text.strip())
        except (KeyError, ValueError) as err:
            message = self.inliner.reporter.error(str(err).strip("'\""), line=self.lineno)
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        return [nodes.inline(self.rawtext, text, classes=["cdtl-runtime"])], []


class TimingsNode(nodes.General, nodes.Element):
    """Placeholder for the table, filled in once every chapter of the build has been executed or read from cache."""


class ExecutionTimings(SphinxDirective):
    """``{execution-timings}``: every chapter's time in this build next to the measured times.

    ``:measured-only:`` leaves out the column of this build (a page about planning, not this build).
    """

    option_spec = {"measured-only": directives.flag}

    def run(self) -> list[nodes.Node]:
        if not hasattr(self.env, DOCS_KEY):
            setattr(self.env, DOCS_KEY, set())
        getattr(self.env, DOCS_KEY).add(self.env.docname)
        self.env.note_dependency(str(timings.TIMINGS))
        return [TimingsNode(measured_only="measured-only" in self.options)]


def _cell(content: nodes.Node | str) -> nodes.entry:
    paragraph = nodes.paragraph()
    paragraph += nodes.Text(content) if isinstance(content, str) else content
    return nodes.entry("", paragraph)


def _table(header: list[str], rows: list[list[nodes.Node | str]]) -> nodes.table:
    table = nodes.table(classes=["colwidths-auto", "cdtl-timings"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    row = nodes.row()
    for title in header:
        row += _cell(title)
    head += row
    for values in rows:
        row = nodes.row()
        for value in values:
            row += _cell(value)
        body += row
    return table


class TimingsTransform(SphinxPostTransform):
    """Replace each placeholder with the table: the chapters in book order, this build and the measurements."""

    default_priority = 8  # before references are resolved, so the chapter links resolve

    def run(self, **kwargs: Any) -> None:
        from myst_nb.sphinx_ import NbMetadataCollector

        from cdtl.profiles import choose

        data = timings.load()
        executed = {name: meta.get("exec_data") for name, meta in NbMetadataCollector.get_doc_data(self.env).items()}
        chapters = [name for name in self.env.found_docs if name.startswith("chapters/")]
        chapters.sort(key=lambda name: _stem(name))
        columns = [(profile, machine) for profile in timings.PROFILES for machine in data["machines"]
                   if any(machine in data["chapters"].get(_stem(c), {}).get(profile, {}) for c in chapters)]
        profile, _ = choose()
        for node in self.document.findall(TimingsNode):
            header = ["chapter"]
            if not node["measured_only"]:
                header.append(f"this build ({profile})")
            header += [f"{p}, {data['machines'][m]}" for p, m in columns]
            rows = []
            for name in chapters:
                link = pending_xref(refdoc=self.env.docname, reftarget="/" + name, reftype="doc", refdomain="std",
                                    refexplicit=True, refwarn=True)
                link += nodes.literal(text=_stem(name))
                row: list[nodes.Node | str] = [link]
                if not node["measured_only"]:
                    run = executed.get(name) or {}
                    row.append(timings.duration(run["runtime"]) if run.get("runtime") else "not executed")
                for p, m in columns:
                    seconds = data["chapters"].get(_stem(name), {}).get(p, {}).get(m)
                    row.append(timings.duration(seconds) if seconds else "not yet measured")
                rows.append(row)
            node.replace_self(_table(header, rows))


def _refresh(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Rewrite the pages with a table after every build: the chapters' times may have changed."""
    return sorted(getattr(env, DOCS_KEY, set()) & env.found_docs)


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, DOCS_KEY, set()).discard(docname)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    setattr(env, DOCS_KEY, getattr(env, DOCS_KEY, set()) | getattr(other, DOCS_KEY, set()))


def setup(app: Sphinx) -> None:
    """Register the role, the directive and the transform that fills the table in."""
    app.add_role("runtime", RuntimeRole())
    app.add_node(TimingsNode)
    app.add_directive("execution-timings", ExecutionTimings)
    app.add_post_transform(TimingsTransform)
    app.connect("env-updated", _refresh)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
