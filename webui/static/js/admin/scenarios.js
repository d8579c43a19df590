// Scenarios: apply an intervention to the live society (the same JSON as a scenario's timeline
// entry, POST /townsquare/societies/{id}/interventions, audit-logged), and the scenario runs
// (`townsquare run`) with their state and answers.

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { act, errorText, num, poll, saveDownload, section, stamp, table } from "./util.js";

const TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"];
// each kind's fields: [key, input kind]; "agent" picks one of the society's agents, "agents" several
const KINDS = {
  tell: [["agent", "agent"], ["fact", "textarea"], ["importance", "importance"]],
  news: [["channel", "channel"], ["title", "text"], ["content", "textarea"]],
  add_agent: [["name", "text"], ["bio", "textarea"], ["interests", "list"]],
  change_agent: [["agent", "agent"], ["traits", "traits"], ["interests", "list"], ["stances", "stances"], ["bio", "textarea"]],
  pause_agent: [["agent", "agent"], ["reason", "text"]],
  mute_agent: [["agent", "agent"], ["reason", "text"]],
  resume_agent: [["agent", "agent"], ["reason", "text"]],
  remove_agent: [["agent", "agent"], ["reason", "text"]],
  open_channel: [["channel", "text"], ["topic", "text"]],
  close_channel: [["channel", "channel"], ["reason", "text"]],
  inject_document: [["title", "text"], ["text", "textarea"], ["agents", "agents"]],
};

export async function mount(el, ctx) {
  if (!ctx.guildId) { replace(el, h("h1", {}, t("adm_nav_scenarios")), h("p", {}, t("adm_no_society"))); return null; }
  const [cast, activity] = await Promise.all([
    api("GET", "/townsquare/agents", undefined, { query: { guild_id: ctx.guildId } }),
    api("GET", "/townsquare/dashboard/channels/activity", undefined, { query: { guild_id: ctx.guildId, minutes: 60, bucket_minutes: 60 } })
      .catch(() => ({ channels: [] })),
  ]);
  const applied = h("ul", { class: "applied", "aria-live": "polite" });
  const runsStatus = h("p", { class: "poll-status muted", role: "status" });
  const runsBox = h("div", { class: "table-wrap" });
  replace(el, h("h1", {}, t("adm_nav_scenarios")),
    section(t("adm_intervene"), h("p", { class: "muted" }, t("adm_intervene_help")), interventionForm(ctx, cast, activity.channels, applied), applied),
    section(t("adm_runs"), h("p", { class: "muted" }, t("adm_runs_help")), runsStatus, runsBox));

  async function loadRuns() {
    const runs = await api("GET", "/townsquare/runs", undefined, { query: { limit: 50 } });
    runsStatus.textContent = runs.length ? t("adm_updated", { time: new Date().toLocaleTimeString() }) : t("adm_no_runs");
    replace(runsBox, runs.length ? table(
      [t("adm_run_scenario"), t("adm_run_arm"), t("adm_run_state"), t("adm_run_started"), t("adm_run_ended"), t("adm_run_seed"),
        t("adm_run_model"), t("adm_run_answers"), t("adm_run_batch")],
      runs.map((r) => h("tr", { "data-run-id": r.id },
        h("th", { scope: "row" }, r.name), h("td", {}, `${r.arm} #${r.repeat + 1}`),
        h("td", {}, h("span", { class: `status run-${r.state}` }, t(`adm_run_${r.state}`)), r.error ? h("div", { class: "small muted" }, r.error) : null),
        h("td", {}, stamp(r.started_at)), h("td", {}, stamp(r.ended_at)), h("td", { class: "num" }, String(r.seed)),
        h("td", {}, r.model || "–", h("div", { class: "small muted" }, r.code_version)),
        h("td", {}, (r.results?.questions || []).map((q) => h("div", {}, `${q.name}: ${num(q.value, 3)}`))),
        // the batch's arms side by side (every run of one `townsquare run`), one HTML file
        h("td", {}, h("button", { type: "button", class: "batch-report", "data-batch-id": r.batch_id,
          onclick: (e) => act(e.currentTarget, () => saveDownload(`/api/v10/townsquare/runs/batches/${r.batch_id}/report?download=true`,
            `batch-${r.batch_id}.html`), t("adm_sc_downloaded")) }, t("adm_run_batch_report"))))),
      { caption: t("adm_runs") }) : null);
  }
  return poll(loadRuns, 10000, (error) => { runsStatus.textContent = errorText(error); });
}

function interventionForm(ctx, cast, channels, applied) {
  const names = cast.map((a) => a.name);
  const kind = h("select", { id: "intervention-kind", name: "kind" },
    Object.keys(KINDS).map((k) => h("option", { value: k }, t(`adm_kind_${k}`))));
  const fields = h("div", { class: "stack intervention-fields" });
  const channelList = h("datalist", { id: "intervention-channels" }, channels.map((c) => h("option", { value: c.name })));
  // the label beside its input, not around it: a select's options would become part of its name
  const label = (key, input) => {
    input.id = `intervention-${key}`;
    return h("div", { class: "field" }, h("label", { for: input.id }, t(`adm_field_${key}`)), input);
  };

  function input(key, type) {
    switch (type) {
      case "agent": return label(key, h("select", { name: key, required: true }, names.map((n) => h("option", { value: n }, n))));
      case "agents": return label(key, h("select", { name: key, multiple: true, size: Math.min(6, names.length) },
        names.map((n) => h("option", { value: n }, n))));
      case "channel": return label(key, h("input", { name: key, required: true, list: "intervention-channels", maxlength: 100 }));
      case "textarea": return label(key, h("textarea", { name: key, rows: 3, maxlength: key === "text" ? 20000 : 2000 }));
      case "importance": return label(key, h("input", { name: key, type: "number", min: 1, max: 10, step: 1, value: 9 }));
      case "list": return label(key, h("input", { name: key, placeholder: t("adm_comma_separated") }));
      case "stances": return label(key, h("textarea", { name: key, rows: 2, placeholder: t("adm_stances_placeholder") }));
      case "traits": return h("fieldset", { class: "traits" }, h("legend", {}, t("adm_persona_traits")),
        TRAITS.map((trait) => h("label", {}, t(`adm_trait_${trait}`), h("input", { name: `trait_${trait}`, type: "number", min: 0, max: 1, step: 0.05 }))));
      default: return label(key, h("input", { name: key, maxlength: key === "channel" ? 100 : 300 }));
    }
  }

  function render() {
    replace(fields, KINDS[kind.value].map(([key, type]) => input(key, type)));
  }
  kind.addEventListener("change", render);
  render();

  function body(form) {
    const d = new FormData(form);
    const k = kind.value;
    const text = (key) => String(d.get(key) || "").trim();
    const list = (key) => text(key).split(",").map((s) => s.trim()).filter(Boolean);
    const out = { kind: k };
    for (const [key, type] of KINDS[k]) {
      if (type === "traits") {
        const traits = Object.fromEntries(TRAITS.filter((x) => text(`trait_${x}`) !== "").map((x) => [x, Number(text(`trait_${x}`))]));
        if (Object.keys(traits).length) out.traits = traits;
      } else if (type === "list") {
        if (text(key)) out[key] = list(key);
      } else if (type === "agents") {
        const chosen = d.getAll(key).map(String);
        out[key] = chosen.length ? chosen : "all";
      } else if (type === "stances") {
        const stances = {};
        for (const line of text(key).split("\n")) {
          const [topic, value] = line.split("=");
          if (topic && topic.trim() && value !== undefined) stances[topic.trim()] = Number(value);
        }
        if (Object.keys(stances).length) out.stances = stances;
      } else if (type === "importance") {
        out[key] = Number(text(key) || 9);
      } else if (text(key)) {
        out[key] = text(key);
      }
    }
    if (k === "add_agent") return { kind: k, persona: { name: out.name, bio: out.bio, interests: out.interests || [] } };
    return out;
  }

  const form = h("form", { class: "stack intervention-form" },
    h("label", { for: "intervention-kind" }, t("adm_intervention_kind")), kind, fields, channelList,
    h("button", { type: "submit", class: "primary" }, t("adm_apply_intervention")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = await act(form.querySelector("button[type=submit]"),
      () => api("POST", `/townsquare/societies/${ctx.guildId}/interventions`, body(form)));
    if (done) {
      applied.prepend(h("li", {}, `${new Date().toLocaleTimeString()} · ${done.did}`));
      render();
    }
  });
  return form;
}
