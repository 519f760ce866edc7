"""Include each script once per page.

sphinx-thebe adds its inline configuration script (``const THEBE_JS_URL = ...``) each time Sphinx
prepares to read documents; in a Jupyter Book build that happens twice, so every page declared the
same constants twice and the browser reported a script error on every page. This extension drops
repeated scripts from each page's context before it is written.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts, seen = context.get("script_files"), set()
    if not scripts:
        return
    unique = []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
