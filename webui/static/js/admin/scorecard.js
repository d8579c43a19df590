// Scorecard: the society over a window (activity, conversation, text quality, the gate, the
// diffusion of planted facts, sentiment, topics, the graph), with its alerts and breakthroughs
// linked to the messages, and the exports (a zip) to download. Plots are our own SVG charts.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { lineChart } from "../lib/charts.js";
import { act, clock, errorText, num, pct, saveDownload, section, stamp, table } from "./util.js";

const WINDOWS = [60, 360, 1440, 10080, 0]; // minutes; 0: since the society was founded
const FORMATS = ["parquet", "csv", "gexf", "graphml"];

function stat(label, value, detail = null) {
  return h("div", { class: "stat card" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value),
    detail ? h("div", { class: "muted" }, detail) : null);
}

function query(minutes, facts) {
  const params = new URLSearchParams();
  if (minutes) params.append("since", new Date(Date.now() - minutes * 60_000).toISOString());
  for (const f of facts) params.append("fact", f);
  const qs = params.toString();
  return qs ? `?${qs}` : "";
}

/** A link to a message in the chat client, with its first words. */
function messageLink(card, id) {
  const m = card.messages[id];
  if (!m) return h("code", {}, id);
  const where = m.guild_id || "@me";
  return h("a", { href: `/app/${where}/${m.channel_id}/${m.id}`, class: "message-link", "data-message-id": m.id }, m.excerpt || id);
}

function alertText(a) {
  const d = a.detail;
  return t(`adm_sc_alert_${a.kind}`, { name: a.agent.name, ...Object.fromEntries(Object.entries(d).map(([k, v]) =>
    [k, typeof v === "number" && !Number.isInteger(v) ? num(v, 2) : v])) });
}

export async function mount(el, ctx) {
  if (!ctx.guildId) { replace(el, h("h1", {}, t("adm_nav_scorecard")), h("p", {}, t("adm_no_society"))); return null; }
  let minutes = 60;
  const status = h("p", { class: "poll-status muted", role: "status" });
  const body = h("div", { class: "scorecard" });
  const facts = h("input", { type: "text", id: "sc-facts", placeholder: "party,harbour; bakery,friday", size: 32 });
  const windowSelect = h("select", { id: "sc-window", onchange: (e) => { minutes = Number(e.target.value); } },
    WINDOWS.map((m) => h("option", { value: m, selected: m === minutes }, m ? t("adm_minutes", { minutes: m }) : t("adm_sc_whole"))));
  const factList = () => facts.value.split(";").map((f) => f.trim()).filter(Boolean);

  let latest = 0; // only the last request asked renders (an earlier one may answer after it)
  async function load() {
    const mine = ++latest;
    status.textContent = t("adm_sc_computing");
    const card = await api("GET", `/townsquare/societies/${ctx.guildId}/scorecard${query(minutes, factList())}`);
    if (mine !== latest) return;
    status.textContent = t("adm_sc_computed", { time: clock(card.generated_at), ms: formatNumber(Math.round(card.compute_ms)) });
    render(card);
  }

  // what: "export" (a zip of `format`) or "report" (the HTML report)
  async function download(what, format, button) {
    await act(button, async () => {
      const extra = what === "report" ? "download=true" : `format=${format}`;
      await saveDownload(`/api/v10/townsquare/societies/${ctx.guildId}/${what}${query(minutes, factList())}&${extra}`
        .replace(/^([^?]*)&/, "$1?"), `${what}.${format}`);
    }, t("adm_sc_downloaded"));
  }

  function render(card) {
    const w = card.window;
    const labels = (card.activity.series || []).map((p) => clock(p.t));
    const c = card.conversation, q = card.text_quality, g = card.gate;
    const topics = card.topics.topics || [];
    replace(body,
      h("p", { class: "muted" }, t("adm_sc_window", { since: stamp(w.since), until: stamp(w.until), minutes: formatNumber(w.minutes) })),
      h("div", { class: "stats" },
        stat(t("adm_messages_per_minute"), num(card.activity.per_minute, 2), t("adm_sc_messages", { count: formatNumber(card.activity.messages) })),
        stat(t("adm_sc_reply_depth"), num(c.reply_depth_mean, 2), t("adm_sc_depth_max", { max: c.reply_depth_max ?? "–" })),
        stat(t("adm_sc_reciprocity"), pct(c.reciprocity.answered.reciprocity), t("adm_sc_pairs", { count: c.reciprocity.answered.pairs })),
        stat(t("adm_sc_near_dup"), pct(q.near_rate), t("adm_sc_5gram", { rate: pct(q.repeated_5gram_rate) })),
        stat(t("adm_sc_self_naming"), pct(g.self_naming_rate), t("adm_sc_wrong_voice", { rate: pct(g.wrong_voice_rate) })),
        stat(t("adm_sc_sentiment"), num(card.sentiment.mean, 2))),
      h("div", { class: "charts" },
        lineChart({ title: t("adm_chart_activity"), desc: t("adm_sc_activity_desc"), labels, xHeader: t("adm_time"),
          tableCaption: t("adm_data_table"), yLabel: t("adm_messages"),
          series: [{ name: t("adm_messages"), values: card.activity.series.map((p) => p.per_minute) },
            { name: t("adm_agent_messages"), values: card.activity.series.map((p) => p.agent_messages / (w.bucket_seconds / 60)) }] }),
        lineChart({ title: t("adm_sc_sentiment_chart"), desc: t("adm_sc_sentiment_desc"), labels, xHeader: t("adm_time"),
          tableCaption: t("adm_data_table"), format: (v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
          series: [{ name: t("adm_sc_sentiment"), values: card.sentiment.series.map((p) => (p.mean === null ? null : p.mean + 1)) }],
          yLabel: t("adm_sc_sentiment_axis") }),
        ...card.diffusion.map((f) => lineChart({ title: t("adm_sc_diffusion_chart", { fact: f.fact }), desc: t("adm_sc_diffusion_desc"),
          labels: f.curve.map((p) => `${formatNumber(Math.round(p.sim_seconds / 60))}′`), xHeader: t("adm_sc_sim_minutes"),
          tableCaption: t("adm_data_table"), yLabel: t("adm_sc_informed"),
          series: [{ name: t("adm_sc_informed"), values: f.curve.map((p) => p.informed) },
            { name: t("adm_sc_mentions"), values: f.curve.map((p) => p.mentions) }] })),
        topics.length ? lineChart({ title: t("adm_sc_topics_chart"), desc: t("adm_sc_topics_desc"), labels, xHeader: t("adm_time"),
          tableCaption: t("adm_data_table"), format: (v) => (v === null || v === undefined ? "–" : pct(v)),
          series: topics.slice(0, 8).map((tp) => ({ name: tp.label, values: tp.series.map((p) => p.share) })) }) : null),
      section(t("adm_sc_alerts"),
        card.alerts.length ? h("ul", { class: "sc-alerts" }, card.alerts.map((a) => h("li", { class: `sc-alert sc-${a.severity}`, "data-kind": a.kind,
          "data-agent-id": a.agent.id }, h("strong", {}, t(`adm_sc_kind_${a.kind}`)), " ", alertText(a),
          a.message_ids.length ? h("details", {}, h("summary", {}, t("adm_sc_messages_n", { count: a.message_ids.length })),
            h("ul", {}, a.message_ids.map((id) => h("li", {}, messageLink(card, id))))) : null)))
          : h("p", { class: "muted" }, t("adm_sc_no_alerts"))),
      section(t("adm_sc_breakthroughs"),
        card.breakthroughs.length ? h("ul", { class: "sc-breakthroughs" }, card.breakthroughs.map((b) => h("li", { class: "sc-breakthrough" },
          h("strong", {}, `“${b.idea}”`), " ", t("adm_sc_breakthrough", { name: b.origin.name, count: b.adopters.length, communities: b.communities }),
          h("ul", {}, h("li", {}, messageLink(card, b.origin.message_id)), b.adopters.map((x) => h("li", {}, `${x.name}: `, messageLink(card, x.message_id)))))))
          : h("p", { class: "muted" }, t("adm_sc_no_breakthroughs"))),
      section(t("adm_sc_diffusion"), card.diffusion.length ? table([t("adm_sc_fact"), t("adm_sc_informed"), t("adm_sc_mentions"), t("adm_sc_first")],
        card.diffusion.map((f) => h("tr", {}, h("th", { scope: "row" }, f.fact), h("td", { class: "num" }, `${f.agents_informed} / ${f.agents}`),
          h("td", { class: "num" }, formatNumber(f.mentions)), h("td", {}, f.first ? messageLink(card, f.first.message_id) : "–"))))
        : h("p", { class: "muted" }, t("adm_sc_no_facts"))),
      section(t("adm_sc_topics"), card.topics.available ? table([t("adm_sc_topic"), t("adm_sc_share"), t("adm_sc_trend")],
        topics.map((tp) => h("tr", { "data-rising": String(tp.rising) }, h("th", { scope: "row" }, tp.label), h("td", { class: "num" }, pct(tp.share)),
          h("td", {}, tp.rising ? t("adm_sc_rising", { early: pct(tp.early_share), late: pct(tp.late_share) }) : "–"))))
        : h("p", { class: "muted" }, t("adm_sc_no_topics", { reason: card.topics.reason || "" }))),
      section(t("adm_sc_graph"),
        h("p", {}, t("adm_sc_graph_summary", { communities: card.graph.community_count ?? "–", stability: num(card.graph.stability?.mean_best_jaccard, 2),
          snapshots: card.graph.snapshots ?? 0 })),
        table([t("adm_member"), t("adm_influence"), t("adm_betweenness")], (card.graph.influence || []).map((n, i) => h("tr", {},
          h("th", { scope: "row" }, n.name), h("td", { class: "num" }, num(n.value, 2)),
          h("td", {}, card.graph.brokers?.[i] ? `${card.graph.brokers[i].name} (${num(card.graph.brokers[i].value, 3)})` : "–"))))),
      section(t("adm_sc_exports"), h("div", { class: "button-row" }, FORMATS.map((f) => h("button", { type: "button", "data-format": f,
        onclick: (e) => download("export", f, e.currentTarget) }, t("adm_sc_download", { format: f.toUpperCase() }))),
        h("button", { type: "button", onclick: (e) => download("report", "html", e.currentTarget) }, t("adm_sc_report")))));
  }

  const compute = h("button", { type: "submit", class: "primary" }, t("adm_sc_compute"));
  const form = h("form", { class: "scorecard-form", onsubmit: (e) => { e.preventDefault(); act(compute, load); } },
    h("label", { for: "sc-window", class: "inline-label" }, t("adm_window")), " ", windowSelect, " ",
    h("label", { for: "sc-facts", class: "inline-label" }, t("adm_sc_facts")), " ", facts, " ", compute);
  replace(el, h("h1", {}, t("adm_nav_scorecard")), form, status, body);
  try {
    await load();
  } catch (error) {
    status.textContent = errorText(error);
  }
  return null;
}
