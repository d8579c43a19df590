// The admin dashboard: a small single-page app over the REST API (administrators only).
// Views live in their own modules; each `mount(el, ctx)` returns a function that stops it.

import { api, requireUser } from "../lib/api.js";
import { h, replace, $ } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { act, errorText } from "./util.js";
import * as overview from "./overview.js";
import * as agents from "./agents.js";
import * as agent from "./agent.js";
import * as channels from "./channels.js";
import * as graph from "./graph.js";
import * as scorecard from "./scorecard.js";
import * as world from "./world.js";
import * as scenarios from "./scenarios.js";
import * as system from "./system.js";

const root = $("#main");
const GUILD_KEY = "ts_admin_guild";

const NAV = [
  ["overview", "/admin", "adm_nav_overview"],
  ["agents", "/admin/agents", "adm_nav_agents"],
  ["channels", "/admin/channels", "adm_nav_channels"],
  ["graph", "/admin/graph", "adm_nav_graph"],
  ["world", "/admin/world", "adm_nav_world"],
  ["scenarios", "/admin/scenarios", "adm_nav_scenarios"],
  ["scorecard", "/admin/scorecard", "adm_nav_scorecard"],
  ["system", "/admin/system", "adm_nav_system"],
];

const ctx = { me: null, societies: [], guildId: null, society: null, navigate, reloadSocieties };
let stopView = null;

function match(pathname) {
  const parts = pathname.replace(/\/+$/, "").split("/").slice(2); // after /admin
  if (parts[0] === "agents" && /^\d{1,20}$/.test(parts[1] || "")) return { name: "agents", view: agent, params: { id: parts[1] } };
  const found = { agents, channels, graph, world, scenarios, scorecard, system }[parts[0]];
  return found ? { name: parts[0], view: found, params: {} } : { name: "overview", view: overview, params: {} };
}

function navigate(path) {
  history.pushState(null, "", path);
  route();
}

async function route() {
  if (stopView) { stopView(); stopView = null; }
  const { name, view, params } = match(location.pathname);
  for (const link of root.querySelectorAll(".admin-nav a")) {
    if (link.dataset.name === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  closeNav();
  const el = $("#admin-view");
  replace(el, h("p", { class: "loading" }, t("loading")));
  try {
    stopView = (await view.mount(el, { ...ctx, params })) || null;
  } catch (error) {
    replace(el, h("p", { class: "error", role: "alert" }, errorText(error)));
  }
  el.focus({ preventScroll: true });
}

function closeNav() {
  const toggle = $("#admin-menu");
  if (toggle) { toggle.setAttribute("aria-expanded", "false"); $("#admin-nav").classList.remove("open"); }
}

async function reloadSocieties() {
  ctx.societies = await api("GET", "/townsquare/societies");
  ctx.society = ctx.societies.find((s) => s.guild_id === ctx.guildId) || null;
  renderSocietyBar();
}

function pickGuild() {
  const asked = new URLSearchParams(location.search).get("guild") || localStorage.getItem(GUILD_KEY);
  const found = ctx.societies.find((s) => s.guild_id === asked) || ctx.societies[0] || null;
  ctx.guildId = found ? found.guild_id : null;
  ctx.society = found;
}

function renderSocietyBar() {
  const bar = $("#society-bar");
  if (!ctx.societies.length) { replace(bar, h("span", { class: "muted" }, t("adm_no_society"))); return; }
  const select = h("select", { id: "society-select", onchange: (e) => {
    localStorage.setItem(GUILD_KEY, e.target.value);
    pickGuildFrom(e.target.value);
  } }, ctx.societies.map((s) => h("option", { value: s.guild_id, selected: s.guild_id === ctx.guildId }, s.name)));
  const paused = ctx.society?.paused;
  const toggle = h("button", { type: "button", class: paused ? "primary" : "danger", "aria-pressed": String(Boolean(paused)),
    onclick: (e) => act(e.currentTarget, async () => {
      await api("POST", `/townsquare/societies/${ctx.guildId}/${paused ? "resume" : "pause"}`, {});
      await reloadSocieties();
    }, paused ? t("adm_society_resumed") : t("adm_society_paused")) }, paused ? t("adm_resume_society") : t("adm_pause_society"));
  replace(bar, h("label", { for: "society-select", class: "inline-label" }, t("adm_society")), select,
    paused ? h("span", { class: "status status-paused" }, t("adm_status_paused")) : null, toggle);
}

function pickGuildFrom(value) {
  ctx.guildId = value;
  ctx.society = ctx.societies.find((s) => s.guild_id === value) || null;
  renderSocietyBar();
  route();
}

function shell() {
  const toggle = h("button", { type: "button", id: "admin-menu", class: "menu-toggle", "aria-expanded": "false", "aria-controls": "admin-nav",
    onclick: () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      $("#admin-nav").classList.toggle("open", open);
      if (open) $("#admin-nav a")?.focus();
    } }, h("span", { "aria-hidden": "true" }, "☰"), h("span", { class: "visually-hidden" }, t("adm_menu")));
  const nav = h("nav", { id: "admin-nav", class: "admin-nav", "aria-label": t("adm_sections") },
    h("ul", {}, NAV.map(([name, href, key]) => h("li", {}, h("a", { href, "data-name": name, onclick: (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(href);
    } }, t(key))))));
  replace(root,
    h("header", { class: "admin-header" },
      toggle,
      h("a", { href: "/admin", class: "brand", onclick: (e) => { e.preventDefault(); navigate("/admin"); } },
        h("img", { src: `/static/img/icon.svg?v=${document.body.dataset.v}`, alt: "", width: 24, height: 24 }), t("admin_title")),
      h("div", { id: "society-bar", class: "society-bar" }),
      h("nav", { class: "header-links", "aria-label": t("adm_elsewhere") },
        h("a", { href: "/app" }, t("adm_to_chat")),
        h("a", { href: location.pathname + "?lang=" + (document.documentElement.lang === "fr" ? "en" : "fr"),
          hreflang: document.documentElement.lang === "fr" ? "en" : "fr" }, document.documentElement.lang === "fr" ? "English" : "Français"))),
    nav,
    h("div", { id: "admin-view", class: "admin-view", tabindex: "-1" }),
    h("div", { id: "admin-toasts", class: "toasts", role: "status", "aria-live": "polite" }));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeNav(); });
}

async function start() {
  const me = await requireUser();
  ctx.me = me;
  root.setAttribute("aria-busy", "false");
  if (!me.townsquare_admin) {
    replace(root, h("section", { class: "refused card", role: "alert" },
      h("h1", {}, t("adm_admins_only_title")), h("p", {}, t("adm_admins_only")), h("p", {}, h("a", { href: "/app" }, t("adm_to_chat")))));
    return;
  }
  shell();
  ctx.societies = await api("GET", "/townsquare/societies");
  pickGuild();
  renderSocietyBar();
  window.addEventListener("popstate", route);
  await route();
}

start().catch((error) => {
  root.setAttribute("aria-busy", "false");
  replace(root, h("p", { class: "error", role: "alert" }, errorText(error)));
});
