// One agent: status and override, persona editor, post as the agent, memory search,
// relationships and the LLM call log.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { sparkline } from "../lib/charts.js";
import { act, ago, callErrorText, errorText, lastFailure, num, poll, section, stamp, statusBadge, table } from "./util.js";
import { lastAction, overrideButtons } from "./agents.js";

const TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"];

export async function mount(el, ctx) {
  const id = ctx.params.id;
  const head = h("div", { class: "agent-head" });
  const personaBox = h("div");
  const memoryBox = h("div");
  const bondsBox = h("div");
  const callsBox = h("div");
  const postBox = h("div");
  replace(el,
    h("p", {}, h("a", { href: "/admin/agents", onclick: (e) => { e.preventDefault(); ctx.navigate("/admin/agents"); } }, `← ${t("adm_nav_agents")}`)),
    head,
    h("div", { class: "agent-grid" },
      section(t("adm_persona"), personaBox),
      section(t("adm_post_as"), postBox),
      section(t("adm_memories"), memoryBox),
      section(t("adm_relationships"), bondsBox),
      section(t("adm_llm_calls"), callsBox)));

  let agent = await api("GET", `/townsquare/agents/${id}`);
  let shownState = null;

  async function refresh() {
    // this agent alone: the page of one that starts just before its id
    const live = (await api("GET", "/townsquare/dashboard/agents", undefined,
      { query: { guild_id: agent.guild_id, after: (BigInt(id) - 1n).toString(), limit: 1 } })).find((a) => a.id === id);
    if (!live) return;
    agent = { ...agent, ...live };
    renderHead();
  }

  function renderHead() {
    const titleText = agent.name;
    if (!head.firstChild) {
      head.append(h("h1", { id: "agent-title" }), h("p", { class: "agent-status", role: "status" }), h("div", { class: "agent-failure" }),
        h("div", { class: "agent-override" }));
    }
    head.querySelector("#agent-title").textContent = titleText;
    replace(head.querySelector(".agent-status"), statusBadge(agent.live_status || agent.status), " ",
      h("span", {}, `${t("adm_mood")}: ${agent.mood?.label || "–"}`), " · ",
      h("span", {}, `${t("adm_memory")}: ${agent.memory_count === null || agent.memory_count === undefined ? "–" : formatNumber(agent.memory_count)}`),
      " · ", h("span", {}, `${t("adm_last")}: ${lastAction(agent.last_turn)}`),
      agent.state_reason ? h("span", { class: "muted" }, ` · ${agent.state_reason}`) : null);
    replace(head.querySelector(".agent-failure"), lastFailure(agent.last_failure));
    if (shownState !== agent.state) {
      replace(head.querySelector(".agent-override"), overrideButtons(agent, refresh));
      shownState = agent.state;
    }
  }

  renderHead();
  renderPersona(personaBox, agent, async (updated) => { agent = { ...agent, ...updated }; renderHead(); });
  renderPost(postBox, agent);
  renderMemories(memoryBox, id);
  loadBonds(bondsBox, id).catch((error) => replace(bondsBox, h("p", { class: "error" }, errorText(error))));
  const stopCalls = poll(() => loadCalls(callsBox, id), 10000, (error) => replace(callsBox, h("p", { class: "error" }, errorText(error))));
  const stopHead = poll(refresh, 3000);
  return () => { stopCalls(); stopHead(); };
}

function renderPersona(box, agent, saved) {
  const p = agent.persona;
  const input = (name, label, attrs) => h("label", {}, label, h("input", { name, ...attrs }));
  const form = h("form", { class: "stack persona-form" },
    input("name", t("adm_persona_name"), { value: p.name, required: true, maxlength: 32 }),
    h("label", {}, t("adm_persona_bio"), h("textarea", { name: "bio", rows: 4, required: true, maxlength: 600 }, p.bio)),
    input("interests", t("adm_persona_interests"), { value: (p.interests || []).join(", "), placeholder: t("adm_comma_separated") }),
    input("style", t("adm_persona_style"), { value: p.style || "", maxlength: 300 }),
    input("model", t("adm_persona_model"), { value: p.model || "default", maxlength: 100 }),
    input("home_channels", t("adm_persona_home"), { value: (p.home_channels || []).join(", "), placeholder: t("adm_comma_separated") }),
    h("fieldset", { class: "traits" }, h("legend", {}, t("adm_persona_traits")),
      TRAITS.map((k) => input(k, t(`adm_trait_${k}`), { type: "number", min: 0, max: 1, step: 0.05, value: p.traits?.[k] ?? 0.5 }))),
    h("fieldset", { class: "traits" }, h("legend", {}, t("adm_persona_rhythm")),
      ["wake", "peak", "sleep"].map((k) => input(k, t(`adm_rhythm_${k}`), { type: "number", min: 0, max: 23, step: 1, value: p.rhythm?.[k] ?? 0 }))),
    h("button", { type: "submit", class: "primary" }, t("save")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    const list = (v) => String(v || "").split(",").map((s) => s.trim()).filter(Boolean);
    const persona = { name: d.name, bio: d.bio, style: d.style, model: d.model || "default", interests: list(d.interests),
      home_channels: list(d.home_channels), traits: Object.fromEntries(TRAITS.map((k) => [k, Number(d[k])])),
      rhythm: { wake: Number(d.wake), peak: Number(d.peak), sleep: Number(d.sleep) } };
    const updated = await act(form.querySelector("button[type=submit]"),
      () => api("PATCH", `/townsquare/agents/${agent.id}`, { persona }), t("adm_persona_saved"));
    if (updated) await saved(updated);
  });
  replace(box, form);
}

async function renderPost(box, agent) {
  let channels = [];
  try {
    channels = (await api("GET", `/guilds/${agent.guild_id}/channels`)).filter((c) => c.type === 0);
  } catch (error) {
    replace(box, h("p", { class: "error" }, errorText(error)));
    return;
  }
  const form = h("form", { class: "stack" },
    h("label", {}, t("adm_channel"), h("select", { name: "channel_id" }, channels.map((c) => h("option", { value: c.id }, `#${c.name}`)))),
    h("label", {}, t("adm_message"), h("textarea", { name: "content", rows: 2, required: true, maxlength: 2000 })),
    h("button", { type: "submit" }, t("adm_post")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    const sent = await act(form.querySelector("button[type=submit]"),
      () => api("POST", `/townsquare/agents/${agent.id}/messages`, { channel_id: d.channel_id, content: d.content }), t("adm_posted"));
    if (sent) form.querySelector("textarea").value = "";
  });
  replace(box, form);
}

function renderMemories(box, id) {
  const results = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "row search-row", role: "search" },
    h("label", { class: "grow" }, h("span", { class: "visually-hidden" }, t("adm_memory_query")),
      h("input", { name: "query", type: "search", placeholder: t("adm_memory_query"), maxlength: 500 })),
    h("button", { type: "submit" }, t("adm_search")));
  async function run(query) {
    try {
      const data = await api("GET", `/townsquare/agents/${id}/memories`, undefined, { query: { query: query || undefined, limit: 20 } });
      replace(results, h("p", { class: "muted" }, t("adm_memory_total", { count: formatNumber(data.total) })),
        data.memories.length ? h("ol", { class: "memories" }, data.memories.map((m) => h("li", {},
          h("span", { class: "badge" }, m.kind), " ", m.text,
          h("div", { class: "muted small" }, t("adm_memory_meta", { importance: num(m.importance, 1), when: ago(new Date(m.created_at * 1000).toISOString()) }),
            m.score ? ` · ${t("adm_score")} ${num(m.score.score ?? m.score.total ?? 0, 3)}` : "")))) : h("p", {}, t("adm_no_memories")));
    } catch (error) {
      replace(results, h("p", { class: "error" }, errorText(error)));
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); run(new FormData(form).get("query")); });
  replace(box, form, results);
  run("");
}

async function loadBonds(box, id) {
  const bonds = await api("GET", `/townsquare/agents/${id}/relationships`);
  if (!bonds.length) { replace(box, h("p", { class: "muted" }, t("adm_no_relationships"))); return; }
  const fmt = (b, k) => (b ? num(b[k], 2) : "–");
  replace(box, h("div", { class: "table-wrap" }, table(
    [t("adm_member"), t("adm_affinity"), t("adm_familiarity"), t("adm_trust"), t("adm_their_affinity"), t("adm_described")],
    bonds.map((b) => h("tr", {}, h("th", { scope: "row" }, b.user.global_name || b.user.username, b.user.bot ? h("span", { class: "tag-bot" }, " BOT") : null),
      h("td", { class: "num" }, fmt(b.outgoing, "affinity")), h("td", { class: "num" }, fmt(b.outgoing, "familiarity")),
      h("td", { class: "num" }, fmt(b.outgoing, "trust")), h("td", { class: "num" }, fmt(b.incoming, "affinity")),
      h("td", {}, b.outgoing?.described || "–"))))));
}

async function loadCalls(box, id) {
  const calls = await api("GET", `/townsquare/agents/${id}/llm-calls`, undefined, { query: { limit: 50 } });
  if (!calls.length) { replace(box, h("p", { class: "muted" }, t("adm_no_calls"))); return; }
  const latencies = [...calls].reverse().map((c) => c.latency_ms);
  replace(box,
    h("p", { class: "row" }, sparkline(latencies, { label: t("adm_latency_trend", { count: calls.length }) }),
      h("span", { class: "muted" }, t("adm_latency_trend", { count: calls.length }))),
    h("div", { class: "table-wrap" }, table([t("adm_time"), t("adm_task"), t("adm_backend"), t("adm_outcome"), t("adm_latency"), t("adm_tokens")],
      calls.map((c) => h("tr", { class: c.outcome === "ok" || c.outcome === "cached" ? "" : "row-bad" },
        h("td", {}, stamp(c.created_at)), h("td", {}, c.task), h("td", {}, `${c.backend} · ${c.model}${c.fallback_step ? ` (${t("adm_fallback_step", { step: c.fallback_step })})` : ""}`),
        h("td", {}, c.outcome, c.error ? h("div", { class: "muted small" }, callErrorText(c.error)) : null),
        h("td", { class: "num" }, `${formatNumber(c.latency_ms)} ms`), h("td", { class: "num" }, formatNumber(c.prompt_tokens + c.completion_tokens)))))));
}
