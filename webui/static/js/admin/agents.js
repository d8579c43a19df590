// Agents: live status (with the last failure, in words), mood, last action and memory size of each agent, with the manual
// override (pause / resume / mute) and a form to create an agent. Rows are updated in place on
// every refresh, so keyboard focus stays where it was.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { act, ago, errorText, lastFailure, poll, statusBadge, table, toast } from "./util.js";

const TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"];
const PAGE = 100; // agents per page: the list pages by id (after / limit), whatever the society's size

export function lastAction(turn) {
  if (!turn) return t("adm_never");
  return t("adm_last_action", { trigger: turn.trigger, outcome: turn.outcome, when: ago(turn.created_at) });
}

export function overrideButtons(agent, after) {
  const set = (state) => (e) => act(e.currentTarget, async () => {
    await api("POST", `/townsquare/agents/${agent.id}/${state}`, {});
    await after();
  }, t(`adm_done_${state}`, { name: agent.name }));
  const paused = agent.state === "paused", muted = agent.state === "muted";
  return h("span", { class: "buttons" },
    paused || muted
      ? h("button", { type: "button", class: "primary", onclick: set("resume"), "aria-label": t("adm_resume_agent", { name: agent.name }) }, t("adm_resume"))
      : h("button", { type: "button", onclick: set("pause"), "aria-label": t("adm_pause_agent", { name: agent.name }) }, t("adm_pause")),
    muted ? null : h("button", { type: "button", onclick: set("mute"), "aria-label": t("adm_mute_agent", { name: agent.name }) }, t("adm_mute")));
}

function moodText(mood) {
  if (!mood) return "–";
  return `${mood.label} (${t("adm_valence")} ${Number(mood.valence).toFixed(2)})`;
}

export async function mount(el, ctx) {
  const status = h("p", { class: "poll-status muted", role: "status" });
  const tbody = h("tbody");
  const rows = new Map();
  const cursors = [null]; // the `after` of each page seen so far (the first page has none)
  let page = 0;
  let full = false; // the page shown is full: there may be a next one
  const pageLabel = h("span", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => turn(-1) }, t("adm_page_prev"));
  const next = h("button", { type: "button", onclick: () => turn(1) }, t("adm_page_next"));
  const pager = h("nav", { class: "pager buttons", "aria-label": t("adm_pages") }, prev, " ", pageLabel, " ", next);

  async function turn(step) {
    if (step > 0 && !full) return;
    if (step < 0 && page === 0) return;
    page += step;
    for (const entry of rows.values()) entry.tr.remove();
    rows.clear();
    await load();
  }

  replace(el, h("h1", {}, t("adm_nav_agents")), status, pager,
    h("div", { class: "table-wrap" }, h("table", { class: "data agents-table" },
      h("caption", { class: "visually-hidden" }, t("adm_agents")),
      h("thead", {}, h("tr", {}, [t("adm_agent"), t("adm_status"), t("adm_mood"), t("adm_last"), t("adm_memory"), t("adm_override")]
        .map((x) => h("th", { scope: "col" }, x)))),
      tbody)),
    createForm(ctx, () => load()));

  function row(agent) {
    const cells = {
      status: h("td", {}), mood: h("td", {}), last: h("td", {}), memory: h("td", { class: "num" }), buttons: h("td", {}),
    };
    const tr = h("tr", { "data-agent-id": agent.id },
      h("th", { scope: "row" }, h("a", { href: `/admin/agents/${agent.id}`,
        onclick: (e) => { e.preventDefault(); ctx.navigate(`/admin/agents/${agent.id}`); } }, agent.name)),
      cells.status, cells.mood, cells.last, cells.memory, cells.buttons);
    return { tr, cells, state: null };
  }

  function update(entry, agent) {
    replace(entry.cells.status, statusBadge(agent.live_status), agent.state_reason ? h("div", { class: "muted small" }, agent.state_reason) : null,
      lastFailure(agent.last_failure, { cls: "last-failure small" }));
    entry.cells.mood.textContent = moodText(agent.mood);
    entry.cells.last.textContent = lastAction(agent.last_turn);
    entry.cells.memory.textContent = agent.memory_count === null ? "–" : formatNumber(agent.memory_count);
    if (entry.state !== agent.state) { // buttons only change with the state: focus survives refreshes
      replace(entry.cells.buttons, overrideButtons(agent, load));
      entry.state = agent.state;
    }
  }

  async function load() {
    const query = { guild_id: ctx.guildId, limit: PAGE };
    if (cursors[page]) query.after = cursors[page];
    const agents = await api("GET", "/townsquare/dashboard/agents", undefined, { query });
    full = agents.length === PAGE;
    if (full) cursors[page + 1] = agents[agents.length - 1].id;
    prev.disabled = page === 0;
    next.disabled = !full;
    pageLabel.textContent = t("adm_page", { page: page + 1 });
    const seen = new Set();
    for (const agent of agents) {
      seen.add(agent.id);
      let entry = rows.get(agent.id);
      if (!entry) { entry = row(agent); rows.set(agent.id, entry); tbody.append(entry.tr); }
      update(entry, agent);
    }
    for (const [id, entry] of rows) if (!seen.has(id)) { entry.tr.remove(); rows.delete(id); }
    status.textContent = agents.length ? t("adm_updated", { time: new Date().toLocaleTimeString() }) : t("adm_no_agents");
  }

  return poll(load, 3000, (error) => { status.textContent = errorText(error); });
}

function createForm(ctx, after) {
  const field = (name, label, input) => h("label", {}, label, input);
  const form = h("form", { class: "stack create-agent", novalidate: false },
    field("name", t("adm_persona_name"), h("input", { name: "name", required: true, maxlength: 32 })),
    field("bio", t("adm_persona_bio"), h("textarea", { name: "bio", required: true, maxlength: 600, rows: 3 })),
    field("interests", t("adm_persona_interests"), h("input", { name: "interests", placeholder: t("adm_comma_separated") })),
    field("style", t("adm_persona_style"), h("input", { name: "style", maxlength: 300 })),
    field("model", t("adm_persona_model"), h("input", { name: "model", value: "default", maxlength: 100 })),
    h("fieldset", { class: "traits" }, h("legend", {}, t("adm_persona_traits")),
      TRAITS.map((trait) => field(trait, t(`adm_trait_${trait}`), h("input", { name: trait, type: "number", min: 0, max: 1, step: 0.05, value: 0.5 })))),
    h("button", { type: "submit", class: "primary" }, t("adm_create_agent")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!ctx.guildId) { toast(t("adm_no_society"), { error: true }); return; }
    const d = Object.fromEntries(new FormData(form));
    const persona = { name: d.name, bio: d.bio, style: d.style || "", model: d.model || "default",
      interests: String(d.interests || "").split(",").map((s) => s.trim()).filter(Boolean),
      traits: Object.fromEntries(TRAITS.map((k) => [k, Number(d[k])])) };
    const made = await act(form.querySelector("button[type=submit]"),
      () => api("POST", "/townsquare/agents", { guild_id: ctx.guildId, persona }), t("adm_agent_created", { name: d.name }));
    if (made) { form.reset(); await after(); }
  });
  return h("details", { class: "card panel" }, h("summary", {}, h("h2", { class: "inline" }, t("adm_create_agent"))), form);
}
