"""Number glued tables as tables.

A chapter places a glued table (a pandas table rendered as HTML) with ``{glue:figure}``, which
makes a figure node, so Sphinx would caption it "Fig. N". This extension turns every such figure
whose content is an HTML table, and no image, into a :class:`TableFigure`: Sphinx numbers it
with the tables ("Table N"), the caption is set above it, and it is wrapped in a box that
scrolls sideways when the table is wider than the page's content column.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform


class TableFigure(nodes.figure):
    """A figure that holds a table: numbered and captioned as a table."""


def holds_table(figure: nodes.figure) -> bool:
    """Whether a figure's content is an HTML table and no image."""
    if next(iter(figure.findall(nodes.image)), None) is not None:
        return False
    return any("<table" in raw.astext() for raw in figure.findall(nodes.raw))


class GluedTablesAsTables(SphinxTransform):
    """Replace the figures that hold a table by :class:`TableFigure` nodes, caption first."""

    default_priority = 500

    def apply(self, **kwargs) -> None:
        for figure in list(self.document.findall(nodes.figure)):
            if type(figure) is not nodes.figure or not holds_table(figure):
                continue
            table = TableFigure(figure.rawsource, **figure.attributes)
            captions = [child for child in figure.children if isinstance(child, nodes.caption)]
            table += captions
            table += [child for child in figure.children if not isinstance(child, nodes.caption)]
            table["classes"] = [*table.get("classes", []), "table-figure"]
            figure.replace_self(table)


def visit_table_figure(self, node: TableFigure) -> None:
    self.visit_figure(node)


def depart_table_figure(self, node: TableFigure) -> None:
    self.depart_figure(node)


def setup(app):
    app.add_enumerable_node(TableFigure, "table", html=(visit_table_figure, depart_table_figure))
    app.add_transform(GluedTablesAsTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
