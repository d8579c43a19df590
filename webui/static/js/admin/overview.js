// Overview: the society's vital signs (agents by status, messages per minute, LLM latency and
// fallback rate, errors, quality-gate rejections by reason) with charts of activity, latency and
// mood, and each agent with its last failure in words.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { barChart, lineChart } from "../lib/charts.js";
import { clock, errorText, gateReasonText, keepOpen, lastFailure, num, pct, poll, statusBadge } from "./util.js";

const STATUSES = ["idle", "thinking", "speaking", "paused", "muted", "resting"];

function stat(label, value, extra = null) {
  return h("div", { class: "stat card" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), extra);
}

/** The quality gate's rejections by reason (society-wide, over the window): every reason the
 * gate knows has its row, zero included, so the table does not jump between refreshes. */
export function gatePanel(gate, minutes) {
  return h("section", { class: "card panel gate-panel", "aria-labelledby": "ov-gate" },
    h("h2", { id: "ov-gate" }, t("adm_gate_title")),
    h("p", { class: "muted" }, gate.total ? t("adm_gate_desc", { count: formatNumber(gate.total), minutes })
      : t("adm_gate_none", { minutes })),
    h("div", { class: "table-wrap" }, h("table", { class: "data gate-table" },
      h("caption", { class: "visually-hidden" }, t("adm_gate_title")),
      h("thead", {}, h("tr", {}, [t("adm_gate_reason"), t("adm_gate_count"), t("adm_gate_share")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, gate.by_reason.map((r) => h("tr", { "data-reason": r.reason, class: r.count ? "" : "muted" },
        h("th", { scope: "row" }, gateReasonText(r.reason), " ", h("code", { class: "small" }, r.reason)),
        h("td", { class: "num" }, formatNumber(r.count)),
        h("td", {}, h("meter", { min: 0, max: Math.max(1, gate.total), value: r.count,
          "aria-label": t("adm_gate_share_of", { reason: r.reason }) }), " ",
          gate.total ? pct(r.count / gate.total) : "–")))))));
}

export async function mount(el, ctx) {
  const status = h("p", { class: "poll-status muted", role: "status" });
  const body = h("div", { class: "overview" });
  replace(el, h("h1", {}, t("adm_nav_overview")), status, body);
  let minutes = 60;

  async function load() {
    const data = await api("GET", "/townsquare/dashboard/overview", undefined, { query: { guild_id: ctx.guildId, minutes } });
    // the first page of agents: the overview's counts cover them all, the agents page lists them
    const agents = await api("GET", "/townsquare/dashboard/agents", undefined, { query: { guild_id: ctx.guildId, limit: 100 } });
    status.textContent = t("adm_updated", { time: clock(data.generated_at) });
    keepOpen(body, () => render(data, agents));
  }

  function render(data, agents) {
    const labels = data.series.map((p) => clock(p.t));
    const byStatus = data.agents.by_status;
    replace(body,
      h("div", { class: "stats" },
        stat(t("adm_agents"), formatNumber(data.agents.total),
          h("ul", { class: "status-counts" }, STATUSES.filter((s) => byStatus[s]).map((s) => h("li", {}, statusBadge(s), ` ${byStatus[s]}`)))),
        stat(t("adm_messages_per_minute"), num(data.messages.per_minute, 2),
          h("div", { class: "muted" }, t("adm_in_window", { count: formatNumber(data.messages.total), minutes: data.window_minutes }))),
        stat(t("adm_llm_latency"), data.llm.p50_ms === null ? "–" : `${num(data.llm.p50_ms, 0)} ms`,
          h("div", { class: "muted" }, t("adm_latency_detail", { p95: num(data.llm.p95_ms, 0), calls: formatNumber(data.llm.calls) }))),
        stat(t("adm_fallback_rate"), pct(data.llm.fallback_rate)),
        stat(t("adm_errors"), formatNumber(data.errors.llm + data.errors.turns + data.errors.logs),
          h("div", { class: "muted" }, t("adm_errors_detail", { llm: data.errors.llm, turns: data.errors.turns, logs: data.errors.logs }))),
        data.gate_rejections ? stat(t("adm_gate_rejected"), formatNumber(data.gate_rejections.total),
          h("div", { class: "muted" }, t("adm_in_window_short", { minutes: data.window_minutes }))) : null),
      h("div", { class: "charts" },
        lineChart({ title: t("adm_chart_activity"), desc: t("adm_chart_activity_desc", { minutes: data.window_minutes }),
          labels, xHeader: t("adm_time"), tableCaption: t("adm_data_table"), yLabel: t("adm_messages"),
          series: [{ name: t("adm_messages"), values: data.series.map((p) => p.messages) },
            { name: t("adm_agent_messages"), values: data.series.map((p) => p.agent_messages) }] }),
        lineChart({ title: t("adm_chart_latency"), desc: t("adm_chart_latency_desc"), labels, xHeader: t("adm_time"),
          tableCaption: t("adm_data_table"), yLabel: "ms", format: (v) => (v === null || v === undefined ? "–" : `${Math.round(v)}`),
          series: [{ name: t("adm_latency_avg"), values: data.series.map((p) => p.llm_avg_ms) },
            { name: t("adm_latency_p95"), values: data.series.map((p) => p.llm_p95_ms) }] }),
        data.moods.length ? barChart({ title: t("adm_chart_mood"), desc: t("adm_chart_mood_desc"), labels: data.moods.map((m) => m.name),
          values: data.moods.map((m) => m.valence ?? 0), min: -1, max: 1, xHeader: t("adm_agent"), valueHeader: t("adm_valence"),
          tableCaption: t("adm_data_table"), format: (v) => (v === null || v === undefined ? "–" : v.toFixed(2)) }) : null),
      h("section", { class: "card panel", "aria-labelledby": "ov-agents" },
        h("h2", { id: "ov-agents" }, t("adm_agents")),
        agents.length ? h("ul", { class: "agent-chips" }, agents.map((a) => h("li", { class: "agent-chip", "data-agent-id": a.id },
          h("a", { href: `/admin/agents/${a.id}`, onclick: (e) => { e.preventDefault(); ctx.navigate(`/admin/agents/${a.id}`); } }, a.name),
          " ", statusBadge(a.live_status), " ", h("span", { class: "muted" }, a.mood?.label || ""),
          lastFailure(a.last_failure, { cls: "last-failure small" }))))
          : h("p", { class: "muted" }, t("adm_no_agents")),
        data.agents.total > agents.length ? h("p", { class: "muted" }, t("adm_more_agents", { count: formatNumber(data.agents.total - agents.length) })) : null),
      data.gate_rejections ? gatePanel(data.gate_rejections, data.window_minutes) : null);
  }

  const picker = h("label", { class: "inline-label" }, t("adm_window"), " ",
    h("select", { onchange: (e) => { minutes = Number(e.target.value); load().catch(() => {}); } },
      [15, 60, 360, 1440].map((m) => h("option", { value: m, selected: m === minutes }, t("adm_minutes", { minutes: m })))));
  el.insertBefore(picker, status);
  return poll(load, 5000, (error) => { status.textContent = errorText(error); });
}
