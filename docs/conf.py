"""Sphinx's configuration of the documentation site; ``python docs/build.py`` builds it (offline).

The lessons arrive already executed (docs/build.py runs them), so myst-nb only renders them.
Every asset is served from the site: the theme's own files, and MathJax from the
``sphinx-mathjax-offline`` package (Sphinx would otherwise load it from a CDN).
"""
import chainrule

project = "chainrule"
author = "chainrule's authors"
release = version = chainrule.__version__
copyright = "chainrule's authors, MIT licence"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]
exclude_patterns = ["_readme.md"]          # the README: index.md includes it

# myst-nb: render the executed notebooks as they are; $...$ and $$...$$ are the lessons' math.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_merge_streams = True

# autodoc: the docstrings as written, in source order; signatures without the types' clutter.
autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "sphinx_book_theme"
html_title = "chainrule"
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_favicon = "favicon.svg"             # else the browser asks for /favicon.ico, which the site lacks
html_context = {"default_mode": "light"}  # the theme's first visit; the pictures are drawn on white


# The docstrings are written as plain text with RST's ``code``: two habits of plain text that RST
# reads otherwise are kept as written here, not edited in the library.
def _indent(line):
    return len(line) - len(line.lstrip())


def _plain_text(app, what, name, obj, options, lines):
    """``|x|`` is an absolute value, not an RST substitution; an indented block whose lines are
    indented unevenly (a layout drawn in text) is shown as a literal block."""
    literal, doctest, previous = None, False, ""
    for k, line in enumerate(list(lines)):
        stripped = line.strip()
        if not stripped:
            doctest = False
            continue
        if literal is not None and _indent(line) <= literal:
            literal = None
        if stripped.startswith(">>>"):
            doctest = True
        if literal is None and not doctest:
            parts = line.split("``")
            lines[k] = "``".join(p.replace("|", "\\|") if i % 2 == 0 else p for i, p in enumerate(parts))
        if previous.rstrip().endswith("::") and literal is None:
            literal = _indent(previous)
        previous = line
    # A block quote with uneven indentation: made literal by a '::' paragraph of its own before it.
    k = 0
    while k < len(lines):
        if lines[k].strip() and _indent(lines[k]) > 0 and (k == 0 or not lines[k - 1].strip()):
            block = [k]
            while block[-1] + 1 < len(lines) and lines[block[-1] + 1].strip():
                block.append(block[-1] + 1)
            before = [line for line in lines[:k] if line.strip()]
            uneven = any(_indent(lines[j]) > _indent(lines[k]) for j in block)
            if uneven and not lines[k].lstrip().startswith((">>>", "-", "*")) and not (
                    before and before[-1].rstrip().endswith("::")):
                lines[k:k] = ["::", ""]
                k = block[-1] + 3
                continue
        k += 1


def setup(app):
    app.connect("autodoc-process-docstring", _plain_text)
