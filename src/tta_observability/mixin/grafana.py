"""A small builder for Grafana dashboard JSON: targets, panels, rows, layout and variables.

Generic Grafana model only; the suite's conventions (tag, uids, variables, annotations) live in
:mod:`tta_observability.mixin.dashboards`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

SCHEMA_VERSION = 39
#: Every panel and target queries the data source the ``datasource`` variable selects (never
#: ``${DS_...}``, which only Grafana's manual import dialog resolves).
DS: JSON = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24


def target(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    fmt: str = "time_series",
) -> JSON:
    # A ``$__range`` window already spans the whole dashboard: as a range query each point of
    # the result would compute a window that long again, so such targets are evaluated once.
    if "$__range" in expr:
        instant = True
    t: JSON = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }
    if exemplar:
        t["exemplar"] = True
    return t


@dataclass
class Panel:
    """A panel before layout; ``json`` turns it into Grafana's model at a grid position."""

    type: str
    title: str
    description: str
    unit: str
    targets: list[JSON]
    width: int = 12
    height: int = 8
    options: JSON = field(default_factory=dict)
    defaults: JSON = field(default_factory=dict)
    overrides: list[JSON] = field(default_factory=list)
    transformations: list[JSON] = field(default_factory=list)
    #: Grafana's relative time override of this panel (``now/M``: this month so far).
    time_from: str | None = None
    #: Links in the panel's header: ``(title, url)``.
    links: Sequence[tuple[str, str]] = ()

    def json(self, panel_id: int, x: int, y: int) -> JSON:
        targets = [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(self.targets)]
        return {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": DS,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {
                "defaults": {"unit": self.unit, **self.defaults},
                "overrides": self.overrides,
            },
            "options": self.options,
            "targets": targets,
            **({"transformations": self.transformations} if self.transformations else {}),
            **({"timeFrom": self.time_from} if self.time_from else {}),
            **({"links": [_link(title, url) for title, url in self.links]} if self.links else {}),
        }


def _link(title: str, url: str) -> JSON:
    return {
        "title": title,
        "type": "link",
        "url": url,
        "tooltip": title,
        "icon": "external link",
        "tags": [],
        "asDropdown": False,
        "includeVars": False,
        "keepTime": True,
        "targetBlank": True,
    }


@dataclass
class Row:
    title: str


def thresholds(*steps: tuple[float | None, str]) -> JSON:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def timeseries(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    bars: bool = False,
    min_zero: bool = True,
) -> Panel:
    custom: JSON = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else (25 if stack else 10),
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: JSON = {"custom": custom}
    if min_zero:
        defaults["min"] = 0
    return Panel(
        "timeseries",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults=defaults,
    )


def stat(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 4,
    height: int = 5,
    thresholds: JSON | None = None,
    decimals: int | None = None,
    links: Sequence[tuple[str, str]] = (),
) -> Panel:
    defaults: JSON = {"color": {"mode": "thresholds"}}
    if thresholds is not None:
        defaults["thresholds"] = thresholds
    if decimals is not None:
        defaults["decimals"] = decimals
    return Panel(
        "stat",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
        defaults=defaults,
        links=links,
    )


def table(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 24,
    height: int = 8,
    rename: dict[str, str] | None = None,
    overrides: list[JSON] | None = None,
    sort_by: str | None = None,
    first: Sequence[str] = (),
) -> Panel:
    """A table of instant queries merged on their labels; ``first``: columns to put leftmost."""
    organize: JSON = {"excludeByName": {"Time": True}, "renameByName": rename or {}}
    if first:
        organize["indexByName"] = {column: i for i, column in enumerate(first)}
    return Panel(
        "table",
        title,
        description,
        unit,
        [_instant_table(t) for t in targets],
        width,
        height,
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": ""},
            "sortBy": [{"displayName": sort_by, "desc": True}] if sort_by else [],
        },
        overrides=overrides or [],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": organize},
        ],
    )


def _instant_table(t: JSON) -> JSON:
    return {**t, "format": "table", "instant": True, "range": False}


def node_graph(
    title: str,
    description: str,
    nodes: Sequence[JSON],
    edges: JSON,
    *,
    join_on: str,
    rename: dict[str, str],
    options: JSON,
    overrides: list[JSON] | None = None,
    width: int = 24,
    height: int = 12,
) -> Panel:
    """A Node Graph from instant table queries: ``nodes`` are joined on their ``join_on`` column
    into the nodes frame; ``edges`` is the edges frame. ``rename`` maps query columns to the field
    names the panel reads (``id``, ``title``, ``mainstat``, ``secondarystat``, ``arc__*``,
    ``detail__*``; ``id``, ``source``, ``target`` for edges)."""
    targets = [_instant_table(t) for t in (*nodes, edges)]
    node_refs = "".join(chr(ord("A") + i) for i in range(len(nodes)))
    return Panel(
        "nodeGraph",
        title,
        description,
        "none",
        targets,
        width,
        height,
        options=options,
        overrides=overrides or [],
        transformations=[
            # One nodes frame from the node queries; the edges query passes through unchanged.
            {
                "id": "joinByField",
                "options": {"byField": join_on, "mode": "outer"},
                "filter": {"id": "byRefId", "options": f"/^[{node_refs}]$/"},
            },
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True}, "renameByName": rename},
            },
        ],
    )


def bar_gauge(
    title: str, description: str, unit: str, *targets: JSON, width: int = 12, height: int = 8
) -> Panel:
    """Horizontal bars of instant queries, one per series: a ranking."""
    return Panel(
        "bargauge",
        title,
        description,
        unit,
        [{**t, "instant": True, "range": False} for t in targets],
        width,
        height,
        options={
            "orientation": "horizontal",
            "displayMode": "gradient",
            "valueMode": "color",
            "namePlacement": "left",
            "showUnfilled": True,
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        defaults={"color": {"mode": "continuous-GrYlRd"}, "min": 0},
    )


def heatmap(title: str, description: str, expr: str, *, width: int = 12, height: int = 8) -> Panel:
    return Panel(
        "heatmap",
        title,
        description,
        "s",
        [target(expr, "{{le}}", exemplar=True, fmt="heatmap")],
        width,
        height,
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {
                "mode": "scheme",
                "scheme": "Oranges",
                "scale": "exponential",
                "exponent": 0.5,
                "steps": 64,
                "fill": "dark-orange",
                "reverse": False,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
            "legend": {"show": True},
        },
        defaults={"custom": {"scaleDistribution": {"type": "linear"}}},
    )


def state_timeline(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    mappings: list[JSON],
    thresholds: JSON,
    width: int = 12,
    height: int = 8,
) -> Panel:
    return Panel(
        "state-timeline",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "showValue": "auto",
            "mergeValues": True,
            "rowHeight": 0.9,
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        defaults={
            "color": {"mode": "thresholds"},
            "mappings": mappings,
            "thresholds": thresholds,
            "custom": {"fillOpacity": 80, "lineWidth": 0},
        },
    )


def value_text(mapping: dict[str, tuple[str, str]]) -> list[JSON]:
    """Value mappings: raw value -> (display text, color)."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": i}
                for i, (value, (text, color)) in enumerate(mapping.items())
            },
        }
    ]


def layout(items: Iterable[Panel | Row]) -> list[JSON]:
    """Flows panels left to right in rows of 24 columns; a Row starts a new line."""
    out: list[JSON] = []
    x = y = line_height = 0
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            x = line_height = 0
            out.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                }
            )
            y += 1
            continue
        if x + item.width > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        out.append(item.json(panel_id, x, y))
        x += item.width
        line_height = max(line_height, item.height)
    return out


def query_variable(
    name: str, label: str, query: str, description: str, *, multi: bool = True
) -> JSON:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def colored(column: str, steps: JSON) -> JSON:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {"id": "thresholds", "value": steps},
        ],
    }


def unit(column: str, unit_: str, decimals: int | None = None) -> JSON:
    props: list[JSON] = [{"id": "unit", "value": unit_}]
    if decimals is not None:
        props.append({"id": "decimals", "value": decimals})
    return {"matcher": {"id": "byName", "options": column}, "properties": props}
