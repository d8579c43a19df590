// Social graph: the live society (refreshed while the timeline is at "now"), a slider back
// through the snapshots, details of a selected member, and the same graph as a table.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { graphTable, renderGraph } from "../lib/graphview.js";
import { errorText, num, poll, stamp } from "./util.js";

export async function mount(el, ctx) {
  if (!ctx.guildId) { replace(el, h("h1", {}, t("adm_nav_graph")), h("p", {}, t("adm_no_society"))); return null; }
  const status = h("p", { class: "poll-status muted", role: "status" });
  const canvas = h("div", { class: "graph-canvas card" });
  const details = h("div", { class: "graph-details card", "aria-live": "polite" }, h("p", { class: "muted" }, t("adm_graph_pick")));
  const summary = h("div", { class: "graph-summary" });
  const list = h("div", { class: "table-wrap" });
  const slider = h("input", { type: "range", id: "graph-timeline", min: 0, max: 0, value: 0, step: 1 });
  const when = h("output", { for: "graph-timeline", class: "timeline-when" });
  replace(el, h("h1", {}, t("adm_nav_graph")),
    h("div", { class: "timeline" }, h("label", { for: "graph-timeline" }, t("adm_timeline")), slider, when),
    status, summary, h("div", { class: "graph-layout" }, canvas, details),
    h("details", { class: "graph-text" }, h("summary", {}, t("adm_graph_as_list")), list));

  let snapshots = []; // oldest first; the slider's last position is "now" (live)
  let selected = null;
  let shown = null;

  const describe = (n) => t("adm_node_label", { name: n.name, community: n.community, influence: num(n.influence, 2) });

  function show(graph) {
    shown = graph;
    const live = graph.reason === "live";
    when.textContent = live ? t("adm_now") : stamp(graph.created_at);
    const m = graph.metrics || {};
    replace(summary, h("p", {}, t("adm_graph_summary", { nodes: formatNumber(m.nodes ?? graph.nodes.length), edges: formatNumber(m.edges ?? graph.edges.length),
      communities: formatNumber(m.community_count ?? 0), modularity: num(m.modularity, 2), reciprocity: num(m.reciprocity, 2) })));
    replace(canvas, renderGraph(graph, { title: t("adm_graph_title"), desc: t("adm_graph_desc"), selected, describeNode: describe,
      onSelect: (n) => { selected = n.id; showDetails(n); show(shown); canvas.querySelector(`[data-id="${n.id}"]`)?.focus(); } }));
    replace(list, graphTable(graph, { caption: t("adm_graph_title"),
      headers: [t("adm_member"), t("adm_kind"), t("adm_community"), t("adm_influence"), t("adm_reputation"), t("adm_ties")],
      format: (key, n) => (key === "kind" ? (n.agent ? t("adm_kind_agent") : n.bot ? t("adm_kind_bot") : t("adm_kind_human")) : num(n[key], 2)) }));
    const still = selected && graph.nodes.find((n) => n.id === selected);
    if (still) showDetails(still);
  }

  function showDetails(n) {
    const out = (shown?.edges || []).filter((e) => e.source === n.id);
    const names = new Map((shown?.nodes || []).map((x) => [x.id, x.name]));
    replace(details, h("h2", {}, n.name),
      h("dl", { class: "facts" },
        ...[["adm_community", n.community], ["adm_influence", num(n.influence, 2)], ["adm_reputation", num(n.reputation, 2)],
          ["adm_betweenness", num(n.betweenness, 3)], ["adm_ties", `${n.out_degree} → · ← ${n.in_degree}`]]
          .flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, String(v))])),
      out.length ? h("ul", { class: "ties" }, out.sort((a, b) => b.affinity - a.affinity).map((e) =>
        h("li", {}, t("adm_tie", { name: names.get(e.target) || e.target, affinity: num(e.affinity, 2), trust: num(e.trust, 2) })))) : null);
  }

  async function loadSnapshots() {
    snapshots = (await api("GET", "/townsquare/graph/snapshots", undefined, { query: { guild_id: ctx.guildId, limit: 100 } })).reverse();
    const atEnd = Number(slider.value) === Number(slider.max);
    slider.max = String(snapshots.length);
    if (atEnd) slider.value = slider.max;
    slider.setAttribute("aria-valuetext", Number(slider.value) === snapshots.length ? t("adm_now") : stamp(snapshots[Number(slider.value)]?.created_at));
  }

  async function loadLive() {
    if (Number(slider.value) !== snapshots.length) return; // looking at the past: keep it still
    show(await api("GET", "/townsquare/graph", undefined, { query: { guild_id: ctx.guildId } }));
    status.textContent = t("adm_updated", { time: new Date().toLocaleTimeString() });
  }

  slider.addEventListener("input", async () => {
    const i = Number(slider.value);
    slider.setAttribute("aria-valuetext", i === snapshots.length ? t("adm_now") : stamp(snapshots[i]?.created_at));
    try {
      if (i === snapshots.length) await loadLive();
      else show(await api("GET", `/townsquare/graph/snapshots/${snapshots[i].id}`));
    } catch (error) {
      status.textContent = errorText(error);
    }
  });

  await loadSnapshots();
  return poll(async () => { await loadSnapshots(); await loadLive(); }, 15000, (error) => { status.textContent = errorText(error); });
}
