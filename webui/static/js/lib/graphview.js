// The social graph drawn in SVG, from positions computed by the server (x, y in [-1, 1]):
// communities coloured (.comm-0 ... .comm-9), node size by influence (PageRank, 1.0 = average),
// edges by affinity (width by strength, colour by sign). Nodes are keyboard-focusable buttons;
// a text list of the same graph is built beside it by `graphTable`.

import { h, svgEl as s } from "./dom.js";

const SCALE = 400;

export const communityClass = (community) => `comm-${((Number(community) % 10) + 10) % 10}`;

function radius(influence, maxInfluence) {
  const share = maxInfluence > 0 ? Math.max(0, influence || 0) / maxInfluence : 0;
  return 8 + 16 * Math.sqrt(share);
}

/**
 * renderGraph({nodes, edges}, {title, desc, onSelect(node), selected, describeNode(node) -> string})
 * -> an <svg role="group"> whose nodes are <g class="node" data-id tabindex="0" role="button">.
 */
export function renderGraph(graph, { title = "", desc = "", onSelect = null, selected = null, describeNode = (n) => n.name } = {}) {
  const nodes = graph.nodes || [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const maxInfluence = Math.max(0, ...nodes.map((n) => n.influence || 0));
  const svg = s("svg", { viewBox: `${-SCALE - 60} ${-SCALE - 60} ${2 * SCALE + 120} ${2 * SCALE + 120}`, class: "graph-svg",
    role: "group", "aria-label": title },
  s("title", {}, title), s("desc", {}, desc));
  const edgeLayer = s("g", { class: "edges", "aria-hidden": "true" });
  for (const e of graph.edges || []) {
    const a = byId.get(e.source), b = byId.get(e.target);
    if (!a || !b) continue;
    const strength = Math.min(1, Math.abs(e.affinity || 0));
    edgeLayer.append(s("line", {
      x1: (a.x * SCALE).toFixed(1), y1: (a.y * SCALE).toFixed(1), x2: (b.x * SCALE).toFixed(1), y2: (b.y * SCALE).toFixed(1),
      class: `edge ${(e.affinity || 0) < 0 ? "edge-neg" : "edge-pos"}${e.reciprocated ? " edge-mutual" : ""}`,
      "stroke-width": (1 + 7 * strength).toFixed(1),
    }));
  }
  svg.append(edgeLayer);
  const nodeLayer = s("g", { class: "nodes" });
  for (const n of nodes) {
    const r = radius(n.influence, maxInfluence);
    const g = s("g", {
      class: `node ${communityClass(n.community)}${n.agent ? " node-agent" : n.bot ? " node-bot" : " node-human"}${n.id === selected ? " selected" : ""}`,
      "data-id": n.id, tabindex: 0, role: "button", "aria-label": describeNode(n),
      transform: `translate(${(n.x * SCALE).toFixed(1)} ${(n.y * SCALE).toFixed(1)})`,
    },
    s("title", {}, describeNode(n)),
    n.agent ? s("circle", { r: r.toFixed(1), class: "dot" }) : s("rect", { x: -r, y: -r, width: 2 * r, height: 2 * r, rx: 4, class: "dot" }),
    s("text", { y: (r + 16).toFixed(1), "text-anchor": "middle", class: "node-label", "aria-hidden": "true" }, n.name));
    if (onSelect) {
      g.addEventListener("click", () => onSelect(n));
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onSelect(n); }
      });
    }
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
  return svg;
}

/** The same graph as a table (the accessible alternative), strongest influence first. */
export function graphTable(graph, { caption, headers, format = (v) => v }) {
  const ties = new Map();
  for (const e of graph.edges || []) {
    ties.set(e.source, (ties.get(e.source) || 0) + 1);
  }
  const rows = [...(graph.nodes || [])].sort((a, b) => (b.influence || 0) - (a.influence || 0));
  return h("table", { class: "data graph-list" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((n) => h("tr", { "data-id": n.id },
      h("th", { scope: "row" }, n.name),
      h("td", {}, format("kind", n)),
      h("td", {}, h("span", { class: `swatch ${communityClass(n.community)}`, "aria-hidden": "true" }), ` ${n.community}`),
      h("td", {}, format("influence", n)),
      h("td", {}, format("reputation", n)),
      h("td", {}, String(ties.get(n.id) || 0))))));
}
