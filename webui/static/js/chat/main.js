// The chat client's entry point: loads the signed-in user's world over REST, keeps it live
// through the gateway, and routes /app/{guild}/{channel}, /app/@me/{dm} and /app/invite/{code}.
import { api, requireUser, token } from "../lib/api.js";
import { icon } from "./icons.js";
import { h, replace, $ } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { Gateway } from "../lib/gateway.js";
import { state, cmpId, rememberChannel, rememberMember, rememberPresence, rememberUser, displayName, channelLabel, isDm, isThread, mentionsMe } from "./state.js";
import { MessageList } from "./messages.js";
import { Composer } from "./composer.js";
import { renderSidebar, channelHref } from "./sidebar.js";
import { renderMembers, ThreadsPanel, showSearch } from "./panels.js";
import { toast } from "./ui.js";

const root = $("#main");
const PHONE = window.matchMedia("(max-width: 700px)");
const TYPING_SHOWN_MS = 10_000;

const app = {
  mainList: null,
  composer: null,
  gateway: null,
  typing: new Map(), // channel id -> Map(user id -> timer)
  loadedGuilds: new Set(),
};

// --- layout -----------------------------------------------------------------------------------

const nav = h("nav", { id: "chat-nav", class: "sidebar", "aria-label": t("chat_navigation") });
const membersAside = h("aside", { id: "chat-members", class: "members", "aria-label": t("chat_members") });
const sideAside = h("aside", { id: "chat-side", class: "side-panel", hidden: true, "aria-label": t("chat_panel") });
const title = h("h1", { class: "channel-title", id: "channel-title" });
const topic = h("p", { class: "channel-topic muted" });
const connection = h("p", { class: "connection", role: "status", "aria-live": "polite", "data-state": "connecting" }, t("chat_connecting"));
const typingLine = h("p", { class: "typing muted", "aria-live": "polite" });
const centre = h("div", { class: "centre" });
const navToggle = h("button", { type: "button", class: "icon toggle-nav", "aria-controls": "chat-nav", "aria-expanded": "false",
  "aria-label": t("chat_toggle_channels"), title: t("chat_toggle_channels"), onclick: () => toggle(nav, navToggle) }, icon("menu"));
const membersToggle = h("button", { type: "button", class: "icon toggle-members", "aria-controls": "chat-members", "aria-expanded": "true",
  "aria-label": t("chat_toggle_members"), title: t("chat_toggle_members"), onclick: () => toggle(membersAside, membersToggle) }, icon("members"));
const threadsButton = h("button", { type: "button", class: "icon", "aria-label": t("chat_threads"), title: t("chat_threads"),
  onclick: () => (threads.open && threads.threadId === null ? app.closePanel() : threads.show()) }, icon("thread"));
const searchInput = h("input", { type: "search", name: "q", placeholder: t("chat_search"), "aria-label": t("chat_search"), maxlength: "200" });
const searchForm = h("form", { role: "search", class: "search-form", onsubmit: (e) => {
  e.preventDefault();
  const q = searchInput.value.trim();
  if (q) showSearch(sideAside, app, q);
} }, searchInput);
const threads = new ThreadsPanel(sideAside, app);

function toggle(panel, button, force) {
  const open = force ?? panel.classList.contains("collapsed");
  panel.classList.toggle("collapsed", !open);
  panel.classList.toggle("open", open);
  button.setAttribute("aria-expanded", String(open));
}

function layoutForScreen() {
  // on a phone the sidebar and the member list start closed, behind their toggles
  toggle(nav, navToggle, !PHONE.matches);
  toggle(membersAside, membersToggle, !PHONE.matches);
}

app.closePanel = () => {
  sideAside.hidden = true;
  sideAside.dataset.panel = "";
  replace(sideAside);
  threads.threadId = null;
  threads.list = null;
  app.composer?.focus();
};

// --- data ------------------------------------------------------------------------------------

async function loadGuild(guildId) {
  if (app.loadedGuilds.has(guildId)) return;
  app.loadedGuilds.add(guildId);
  const [guild, channels, members, active] = await Promise.all([
    api("GET", `/guilds/${guildId}`),
    api("GET", `/guilds/${guildId}/channels`),
    api("GET", `/guilds/${guildId}/members`, undefined, { query: { limit: 1000 } }),
    api("GET", `/guilds/${guildId}/threads/active`).catch(() => ({ threads: [] })),
  ]);
  state.guilds.set(guildId, { ...(state.guilds.get(guildId) || {}), ...guild });
  for (const c of channels) rememberChannel(c);
  for (const th of active.threads || []) rememberChannel(th);
  for (const m of members) rememberMember(guildId, m);
}

// Messages the gateway delivered while a read-state fetch was in flight, per fetch: its snapshot
// can predate them, and must not erase their badges.
const fetchesInFlight = new Set(); // of Map(channel id -> [{id, mention}])

function countedDuringFetches(channelId, id, mention) {
  for (const counted of fetchesInFlight) {
    if (!counted.has(channelId)) counted.set(channelId, []);
    counted.get(channelId).push({ id, mention });
  }
}

async function refreshReadStates() {
  const counted = new Map();
  fetchesInFlight.add(counted);
  let rs;
  try {
    rs = await api("GET", "/users/@me/read-states");
  } finally {
    fetchesInFlight.delete(counted);
  }
  for (const e of rs.entries) {
    const snapshotEnd = e.last_channel_message_id || "0";
    const later = (counted.get(e.id) || []).filter((m) => cmpId(m.id, snapshotEnd) > 0 && cmpId(m.id, e.last_message_id) > 0);
    state.readStates.set(e.id, { ...e, unread_count: e.unread_count + later.length,
      mention_count: e.mention_count + later.filter((m) => m.mention).length });
    const channel = state.channels.get(e.id);
    if (channel && e.last_channel_message_id && cmpId(channel.last_message_id || "0", e.last_channel_message_id) < 0) {
      channel.last_message_id = e.last_channel_message_id;
    }
  }
}

const ackTimers = new Map();

/** Mark `messageId` read in `channelId` (debounced: a burst of messages is one request). */
app.ack = (channelId, messageId) => {
  if (!messageId) return;
  const rs = state.readStates.get(channelId);
  if (rs && cmpId(rs.last_message_id || "0", messageId) >= 0 && !rs.unread_count) return;
  state.readStates.set(channelId, { ...(rs || { id: channelId }), last_message_id: messageId, unread_count: 0, mention_count: 0 });
  drawSidebar();
  clearTimeout(ackTimers.get(channelId));
  ackTimers.set(channelId, setTimeout(() => {
    ackTimers.delete(channelId);
    api("POST", `/channels/${channelId}/messages/${messageId}/ack`, {}).catch(() => {});
  }, 300));
};

// Leaving the page must not lose a read marker still waiting for its debounce.
window.addEventListener("pagehide", () => {
  for (const [channelId, timer] of ackTimers) {
    clearTimeout(timer);
    const messageId = state.readStates.get(channelId)?.last_message_id;
    if (messageId) {
      fetch(`/api/v10/channels/${channelId}/messages/${messageId}/ack`, { method: "POST", keepalive: true,
        headers: { Authorization: `Bearer ${token.get()}`, "Content-Type": "application/json" }, body: "{}" }).catch(() => {});
    }
  }
  ackTimers.clear();
});

function seeing(channelId) {
  return document.visibilityState === "visible" && (state.channelId === channelId || threads.threadId === channelId);
}

// --- drawing ---------------------------------------------------------------------------------

let sidebarQueued = false;
function drawSidebar() {
  if (sidebarQueued) return;
  sidebarQueued = true;
  queueMicrotask(() => { sidebarQueued = false; renderSidebar(nav, { onLogout: logout }); });
}

let membersQueued = null;
function drawMembers() {
  if (membersQueued) return;
  membersQueued = setTimeout(() => { membersQueued = null; renderMembers(membersAside, { onMessage: openDm }); }, 50);
}

function drawTyping() {
  const typers = [...(app.typing.get(state.channelId)?.keys() || [])].filter((id) => id !== state.me.id);
  const names = typers.map((id) => displayName(id, state.guildId === "@me" ? null : state.guildId) || "…");
  typingLine.textContent = !names.length ? "" : names.length === 1 ? t("chat_typing_one", { name: names[0] })
    : names.length === 2 ? t("chat_typing_two", { a: names[0], b: names[1] }) : t("chat_typing_many");
}

function setConnection(stateName) {
  connection.dataset.state = stateName;
  connection.textContent = stateName === "connected" ? t("chat_connected") : stateName === "closed" ? t("chat_disconnected")
    : stateName === "reconnecting" ? t("chat_reconnecting") : t("chat_connecting");
  connection.classList.toggle("visually-hidden", stateName === "connected");
}

// --- navigation --------------------------------------------------------------------------------

function parseRoute() {
  const parts = location.pathname.replace(/^\/app\/?/, "").split("/").filter(Boolean);
  const params = new URLSearchParams(location.search);
  if (parts[0] === "invite" && parts[1]) return { invite: parts[1] };
  if (params.get("invite")) return { invite: params.get("invite") };
  return { guildId: parts[0] || null, channelId: parts[1] || null, messageId: parts[2] || null };
}

function go(path, replaceState = false) {
  if (location.pathname !== path) history[replaceState ? "replaceState" : "pushState"]({}, "", path);
  route();
}

function firstChannel(guildId) {
  return [...state.channels.values()].filter((c) => c.guild_id === guildId && (c.type === 0 || c.type === 5))
    .sort((a, b) => a.position - b.position || cmpId(a.id, b.id))[0];
}

async function route() {
  const r = parseRoute();
  if (r.invite) {
    try {
      const invite = await api("POST", `/invites/${encodeURIComponent(r.invite)}`, {});
      toast(t("chat_joined", { name: invite.guild?.name || "" }));
      const guildId = invite.guild?.id || invite.guild_id;
      await loadGuildsList();
      app.loadedGuilds.delete(guildId);
      go(invite.channel?.id ? `/app/${guildId}/${invite.channel.id}` : `/app/${guildId}`, true);
    } catch (error) {
      toast(t("chat_invite_failed", { message: error.message }));
      go("/app", true);
    }
    return;
  }
  let guildId = r.guildId;
  if (!guildId) guildId = [...state.guilds.keys()].sort(cmpId)[0] || "@me";
  if (guildId !== "@me" && !state.guilds.has(guildId)) guildId = "@me";
  state.guildId = guildId;
  if (guildId !== "@me") await loadGuild(guildId);
  let channelId = r.channelId;
  let channel = channelId && state.channels.get(channelId);
  if (channel && isThread(channel)) {
    // a thread link opens its parent with the thread beside it
    await openChannel(channel.parent_id);
    await threads.openThread(channel.id);
    return;
  }
  if (!channel || (guildId === "@me" ? !isDm(channel) : channel.guild_id !== guildId)) {
    channel = guildId === "@me" ? null : firstChannel(guildId);
    channelId = channel?.id || null;
    const path = guildId === "@me" ? (channelId ? `/app/@me/${channelId}` : "/app/@me") : `/app/${guildId}${channelId ? `/${channelId}` : ""}`;
    if (location.pathname !== path) history.replaceState({}, "", path);
  }
  await openChannel(channelId);
  if (r.messageId && app.mainList) await app.mainList.jumpTo(r.messageId);
}

async function openChannel(channelId) {
  if (PHONE.matches) toggle(nav, navToggle, false);
  if (state.channelId === channelId && app.mainList) { drawSidebar(); return; }
  state.channelId = channelId;
  if (sideAside.dataset.panel === "threads") app.closePanel();
  app.mainList = null;
  app.composer = null;
  drawSidebar();
  drawMembers();
  drawTyping();
  const channel = channelId && state.channels.get(channelId);
  if (!channel) {
    title.textContent = state.guildId === "@me" ? t("chat_direct_messages") : "";
    topic.textContent = "";
    replace(centre, h("p", { class: "empty muted" }, state.guildId === "@me" ? t("chat_no_dm_open") : t("chat_no_channels")));
    document.title = "Townsquare";
    return;
  }
  title.textContent = isDm(channel) ? `@${channelLabel(channel)}` : `#${channel.name}`;
  topic.textContent = channel.topic || "";
  document.title = `${title.textContent} · Townsquare`;
  threadsButton.hidden = isDm(channel);
  const list = new MessageList(channelId, {
    reply: (m) => composer.reply(m),
    openThread: (m) => threads.fromMessage(m),
    openChannel: (id) => app.openChannelById(id),
  });
  const composer = new Composer(channelId, list);
  app.mainList = list;
  app.composer = composer;
  replace(centre, list.el, typingLine, composer.el);
  await list.loadLatest();
  if (app.mainList !== list) return;
  app.ack(channelId, list.newestId);
  if (!PHONE.matches) composer.focus();
}

app.openChannelById = (id) => {
  const channel = state.channels.get(id);
  if (channel) go(channelHref(channel));
};

/** Open the channel (or thread) of a search hit and show the message. */
app.jumpTo = async (channelId, messageId) => {
  let channel = state.channels.get(channelId);
  if (!channel) { channel = await api("GET", `/channels/${channelId}`); rememberChannel(channel); }
  if (isThread(channel)) {
    if (state.channelId !== channel.parent_id) go(`/app/${channel.guild_id}/${channel.parent_id}`);
    await threads.openThread(channel.id);
    await threads.list.jumpTo(messageId);
    return;
  }
  if (state.channelId !== channelId) {
    history.pushState({}, "", channelHref(channel));
    state.guildId = channel.guild_id || "@me";
    await openChannel(channelId);
  }
  await app.mainList.jumpTo(messageId);
};

async function openDm(userId) {
  try {
    const channel = await api("POST", "/users/@me/channels", { recipient_id: userId });
    rememberChannel(channel);
    go(`/app/@me/${channel.id}`);
  } catch (error) {
    toast(t("error_generic", { message: error.message }));
  }
}

async function logout() {
  try { await api("POST", "/auth/logout"); } catch { /* the token goes anyway */ }
  app.gateway?.close();
  token.clear();
  location.assign("/login");
}

// --- live updates ------------------------------------------------------------------------------

function listsFor(channelId) {
  return [app.mainList, threads.list].filter((l) => l && l.channelId === channelId);
}

function onMessageCreate(m) {
  rememberUser(m.author);
  const channel = state.channels.get(m.channel_id);
  if (channel) {
    if (!channel.last_message_id || cmpId(channel.last_message_id, m.id) < 0) channel.last_message_id = m.id;
    if (isThread(channel)) channel.message_count = (channel.message_count || 0) + 1;
  } else if (!m.guild_id) {
    // a DM channel we did not know yet
    api("GET", `/channels/${m.channel_id}`).then((c) => { rememberChannel(c); drawSidebar(); }).catch(() => {});
  }
  for (const list of listsFor(m.channel_id)) list.add(m);
  const timers = app.typing.get(m.channel_id);
  if (timers?.has(m.author.id)) { clearTimeout(timers.get(m.author.id)); timers.delete(m.author.id); drawTyping(); }
  if (m.author.id === state.me.id || seeing(m.channel_id)) {
    if (seeing(m.channel_id) && listsFor(m.channel_id).some((l) => l.atBottom())) app.ack(m.channel_id, m.id);
    else if (m.author.id === state.me.id) state.readStates.set(m.channel_id, { id: m.channel_id, last_message_id: m.id, unread_count: 0, mention_count: 0 });
  } else {
    const rs = state.readStates.get(m.channel_id) || { id: m.channel_id, last_message_id: "0", unread_count: 0, mention_count: 0 };
    const mention = Boolean(mentionsMe(m) || !m.guild_id);
    state.readStates.set(m.channel_id, { ...rs, unread_count: rs.unread_count + 1, mention_count: rs.mention_count + (mention ? 1 : 0) });
    countedDuringFetches(m.channel_id, m.id, mention);
  }
  drawSidebar();
}

function onTyping(d) {
  if (d.user_id === state.me.id) return;
  if (!app.typing.has(d.channel_id)) app.typing.set(d.channel_id, new Map());
  const timers = app.typing.get(d.channel_id);
  clearTimeout(timers.get(d.user_id));
  timers.set(d.user_id, setTimeout(() => { timers.delete(d.user_id); drawTyping(); }, TYPING_SHOWN_MS));
  if (d.member) rememberMember(d.guild_id, d.member);
  drawTyping();
}

function onDispatch({ t: type, d }) {
  switch (type) {
    case "READY":
      rememberUser(d.user);
      for (const c of d.private_channels || []) rememberChannel(c);
      drawSidebar();
      break;
    case "GUILD_CREATE":
    case "GUILD_UPDATE": {
      const { channels, threads: ths, members, presences, ...guild } = d;
      state.guilds.set(d.id, { ...(state.guilds.get(d.id) || {}), ...guild });
      for (const c of channels || []) rememberChannel({ ...c, guild_id: d.id });
      for (const th of ths || []) rememberChannel(th);
      for (const m of members || []) rememberMember(d.id, m);
      for (const p of presences || []) rememberPresence(p);
      drawSidebar();
      drawMembers();
      break;
    }
    case "GUILD_DELETE":
      state.guilds.delete(d.id);
      app.loadedGuilds.delete(d.id);
      if (state.guildId === d.id) go("/app/@me", true);
      else drawSidebar();
      break;
    case "GUILD_MEMBER_ADD":
    case "GUILD_MEMBER_UPDATE":
      rememberMember(d.guild_id, d);
      drawMembers();
      break;
    case "GUILD_MEMBER_REMOVE":
      state.members.get(d.guild_id)?.delete(d.user.id);
      drawMembers();
      break;
    case "CHANNEL_CREATE":
    case "CHANNEL_UPDATE":
    case "THREAD_CREATE":
    case "THREAD_UPDATE":
      rememberChannel(d);
      if (type === "THREAD_CREATE") app.mainList?.threadCreated(d);
      if (type === "CHANNEL_UPDATE" && d.id === state.channelId) topic.textContent = d.topic || "";
      if (isThread(d) && threads.open && threads.threadId === null && d.parent_id === state.channelId) threads.show();
      drawSidebar();
      break;
    case "CHANNEL_DELETE":
    case "THREAD_DELETE":
      state.channels.delete(d.id);
      if (state.channelId === d.id) go(state.guildId === "@me" ? "/app/@me" : `/app/${state.guildId}`, true);
      else if (threads.threadId === d.id) threads.show();
      drawSidebar();
      break;
    case "MESSAGE_CREATE":
      onMessageCreate(d);
      break;
    case "MESSAGE_UPDATE":
      for (const list of listsFor(d.channel_id)) list.update(d);
      break;
    case "MESSAGE_DELETE":
      for (const list of listsFor(d.channel_id)) list.remove(d.id);
      break;
    case "MESSAGE_DELETE_BULK":
      for (const list of listsFor(d.channel_id)) for (const id of d.ids) list.remove(id);
      break;
    case "MESSAGE_REACTION_ADD":
    case "MESSAGE_REACTION_REMOVE":
    case "MESSAGE_REACTION_REMOVE_ALL":
    case "MESSAGE_REACTION_REMOVE_EMOJI":
      for (const list of listsFor(d.channel_id)) list.reaction(type.slice("MESSAGE_REACTION_".length), d);
      break;
    case "MESSAGE_ACK":
      state.readStates.set(d.channel_id, { id: d.channel_id, last_message_id: d.message_id, unread_count: d.unread_count, mention_count: d.mention_count });
      drawSidebar();
      break;
    case "TYPING_START":
      onTyping(d);
      break;
    case "PRESENCE_UPDATE":
      rememberPresence(d);
      drawMembers();
      break;
    case "USER_UPDATE":
      rememberUser(d);
      if (d.id === state.me.id) state.me = { ...state.me, ...d };
      drawSidebar();
      break;
    case "AGENT_CREATE":
    case "AGENT_UPDATE":
      state.agents.set(d.id, { ...(state.agents.get(d.id) || {}), status: d.status });
      rememberUser(d.user);
      drawMembers();
      break;
    default:
      break;
  }
}

async function onReidentified() {
  // The server could not replay what this page missed: fetch it again (merging by id, so
  // nothing is shown twice) and recount the unread badges.
  await Promise.all([app.mainList?.refresh(), threads.list?.refresh(), refreshReadStates()]);
  drawSidebar();
}

function startGateway() {
  const gateway = new Gateway({ token: token.get() });
  gateway.addEventListener("state", (e) => setConnection(e.detail));
  gateway.addEventListener("dispatch", (e) => onDispatch(e.detail));
  gateway.addEventListener("reidentified", () => { onReidentified().catch((err) => toast(t("error_generic", { message: err.message }))); });
  gateway.addEventListener("fatal", (e) => { if (e.detail === 4004) logout(); });
  app.gateway = gateway;
  gateway.connect();
}

async function loadGuildsList() {
  const guilds = await api("GET", "/users/@me/guilds");
  for (const g of guilds) state.guilds.set(g.id, { ...(state.guilds.get(g.id) || {}), ...g });
}

// --- start -------------------------------------------------------------------------------------

async function start() {
  state.me = await requireUser();
  rememberUser(state.me);
  const main = h("section", { class: "chat-main", "aria-labelledby": "channel-title" },
    h("header", { class: "topbar" }, navToggle, h("div", { class: "titles" }, title, topic), connection, searchForm, threadsButton, membersToggle),
    centre);
  replace(root, nav, main, sideAside, membersAside);
  root.removeAttribute("aria-busy");
  layoutForScreen();
  PHONE.addEventListener("change", layoutForScreen);
  setConnection("connecting");
  startGateway();
  const [, dms] = await Promise.all([loadGuildsList(), api("GET", "/users/@me/channels")]);
  for (const c of dms) rememberChannel(c);
  await refreshReadStates();
  window.addEventListener("popstate", () => route());
  document.addEventListener("click", (e) => {
    // in-app links change the view without reloading the page
    const a = e.target.closest?.("a[href^='/app']");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    go(a.getAttribute("href"));
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && app.mainList?.atBottom()) app.ack(state.channelId, app.mainList.newestId);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && PHONE.matches) { toggle(nav, navToggle, false); toggle(membersAside, membersToggle, false); }
  });
  await route();
  // a handle for debugging from the console (and for the browser tests to cut the connection)
  window.townsquare = { app, state, gateway: app.gateway };
}

start().catch((error) => {
  root.removeAttribute("aria-busy");
  replace(root, h("p", { class: "error pad", role: "alert" }, t("error_generic", { message: error.message })));
});
