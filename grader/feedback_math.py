"""Maths in feedback pages that renders offline: TeX turned into MathML when the page is written.

A feedback page is a static file a student opens from disk or from their own Jupyter server,
often with no network. nbconvert leaves TeX (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``)
for MathJax, which it loads from a CDN: offline the formulas stay raw TeX. Here every formula
of a markdown cell (the course's and the student's own) is converted to MathML, which browsers
draw themselves (Chromium, Firefox, Safari), so the page needs no script and makes no request
(``tools/templates/classic/mathjax.html.j2`` loads MathJax only in the Formgrader). Code, fenced
or inline, is left as it is; a formula latex2mathml cannot read stays TeX.
"""
from __future__ import annotations

import html
import re

from nbgrader.preprocessors import NbGraderPreprocessor

# Code first (left untouched), then display maths, then inline maths; "\$" is a literal dollar.
_PIECES = re.compile(
    r"(?P<fence>^(?P<ticks>`{3,}|~{3,})[^\n]*\n.*?^(?P=ticks)[ \t]*$)"
    r"|(?P<code>(?P<run>`+).+?(?P=run))"
    r"|\$\$(?P<display>.+?)\$\$|\\\[(?P<display2>.+?)\\\]"
    r"|\\\((?P<inline2>.+?)\\\)|(?<![\\$])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s\\$])?)\$(?!\d)",
    re.S | re.M)


def to_mathml(tex: str, display: bool) -> str | None:
    """``tex`` as a MathML element, or None where latex2mathml cannot read it."""
    from latex2mathml.converter import convert

    try:
        mathml = convert(tex.strip(), display="block" if display else "inline")
    except Exception:
        return None
    # The TeX stays with it, for copying and for screen readers that prefer it.
    return mathml.replace("<math ", f'<math alttext="{html.escape(tex.strip(), quote=True)}" ', 1)


def markdown_with_mathml(text: str) -> str:
    def replace(match: re.Match) -> str:
        if match.group("fence") or match.group("code"):
            return match.group(0)
        display = match.group("display") is not None or match.group("display2") is not None
        tex = next(match.group(g) for g in ("display", "display2", "inline2", "inline") if match.group(g) is not None)
        mathml = to_mathml(tex, display)
        return match.group(0) if mathml is None else mathml

    return _PIECES.sub(replace, text)


class MathToMathML(NbGraderPreprocessor):
    """A GenerateFeedback step: every markdown cell's formulas become MathML."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and ("$" in cell.source or "\\(" in cell.source or "\\[" in cell.source):
            cell.source = markdown_with_mathml(cell.source)
        return cell, resources
