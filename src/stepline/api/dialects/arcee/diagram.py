"""Arcee Orchestra's workflow diagram: Mermaid `graph TD` source, a pure function of the
workflow definition.

As Arcee draws it: a box per node, `START((START))` and `END((END))` circles, edges from
START to the first nodes and from the last ones to END, and a `style` line per node and
terminal in Arcee's colours. Each box shows the node's label (and id, when the label
differs) over its kind. An edge that follows a branch (a conditional's or classifier's
handle) is labelled with it; a loop's body is a subgraph its loop points to with a dotted
"each iteration" arrow.

Node ids in the source are generated (`n0`, `n1`, `n2_0` in a body...): Mermaid reserves
words such as `end` and reads some spellings as edge syntax, so a node's own id only ever
appears inside a quoted, escaped label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stepline.api.dialects.arcee.graph import END, START, Graph, body_of, graph_of

# Mermaid entity codes for what would end or reinterpret a quoted label; '#' first, as
# the codes hold it.
_ESCAPES = (
    ("#", "#35;"),
    ('"', "#quot;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("|", "#124;"),
    ("`", "#96;"),
)


NODE_STYLE = "fill:#bbf,stroke:#333,stroke-width:1px,color:#fff"
START_STYLE = "fill:#9f9,stroke:#333,stroke-width:2px,color:#fff"
END_STYLE = "fill:#f99,stroke:#333,stroke-width:2px,color:#fff"


def label_text(value: str) -> str:
    """Text safe inside a quoted Mermaid label, on one line."""
    for char, code in _ESCAPES:
        value = value.replace(char, code)
    return " ".join(value.splitlines())


def mermaid(definition: Mapping[str, Any]) -> str:
    """The definition as a Mermaid flowchart, top down."""
    lines = ["graph TD", f"    {START}(({START}))", f"    {END}(({END}))"]
    boxes: list[str] = []
    _draw(graph_of(definition), "n", "    ", lines, boxes, top=True)
    lines += [f"    style {box} {NODE_STYLE}" for box in boxes]
    lines += [f"    style {START} {START_STYLE}", f"    style {END} {END_STYLE}"]
    return "\n".join(lines)


def _draw(
    graph: Graph, prefix: str, indent: str, lines: list[str], boxes: list[str], *, top: bool
) -> None:
    """Draw one level: its nodes (and loops' bodies), then its edges; the top level's
    entries start from START and its finishes lead to END."""
    ids = {node.id: f"{prefix}{index}" for index, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        title = node.label if node.label == node.id else f"{node.label} ({node.id})"
        lines.append(f'{indent}{ids[node.id]}["{label_text(title)}<br/>{label_text(node.type)}"]')
        boxes.append(ids[node.id])
        body = body_of(node)
        if body is not None:
            name = f"{ids[node.id]}_body"
            lines.append(f'{indent}subgraph {name}["{label_text("body of " + node.label)}"]')
            _draw(body, f"{ids[node.id]}_", indent + "    ", lines, boxes, top=False)
            lines.append(f"{indent}end")
            lines.append(f'{indent}{ids[node.id]} -.->|"each iteration"| {name}')
    if top:
        lines += [f"{indent}{START} --> {ids[entry]}" for entry in graph.entries]
    for edge in graph.edges:
        if edge.source not in ids or edge.target not in ids:
            continue  # not in a saved definition, which validation keeps consistent
        arrow = "-->" if edge.handle is None else f'-->|"{label_text(edge.handle)}"|'
        lines.append(f"{indent}{ids[edge.source]} {arrow} {ids[edge.target]}")
    if top:
        lines += [f"{indent}{ids[finish]} --> {END}" for finish in graph.finishes]
