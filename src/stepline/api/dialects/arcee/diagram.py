"""Arcee Orchestra's workflow diagram: Mermaid `graph TD` source, a pure function of the
workflow definition.

Every node is a box showing its label (and id, when the label differs) and its kind; the
run flows from a `START` to an `END` terminal, as Arcee draws its graphs. An edge that
follows a branch (a conditional's or classifier's handle) is labelled with it. A loop's
body is a subgraph its loop points to with a dotted "each iteration" arrow.

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


def label_text(value: str) -> str:
    """Text safe inside a quoted Mermaid label, on one line."""
    for char, code in _ESCAPES:
        value = value.replace(char, code)
    return " ".join(value.splitlines())


def mermaid(definition: Mapping[str, Any]) -> str:
    """The definition as a Mermaid flowchart, top down."""
    lines = ["graph TD", f'    {START}(["{START}"])']
    _draw(graph_of(definition), "n", "    ", lines, top=True)
    lines.append(f'    {END}(["{END}"])')
    return "\n".join(lines) + "\n"


def _draw(graph: Graph, prefix: str, indent: str, lines: list[str], *, top: bool) -> None:
    """Draw one level: its nodes (and loops' bodies), then its edges; the top level's
    entries start from START and its finishes lead to END."""
    ids = {node.id: f"{prefix}{index}" for index, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        title = node.label if node.label == node.id else f"{node.label} ({node.id})"
        lines.append(f'{indent}{ids[node.id]}["{label_text(title)}<br/>{label_text(node.type)}"]')
        body = body_of(node)
        if body is not None:
            name = f"{ids[node.id]}_body"
            lines.append(f'{indent}subgraph {name}["{label_text("body of " + node.label)}"]')
            _draw(body, f"{ids[node.id]}_", indent + "    ", lines, top=False)
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
