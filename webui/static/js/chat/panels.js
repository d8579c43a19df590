// The side panels: the member list (presence, BOT tag, agent status, custom status: an agent's mood), the threads of
// the open channel (list, open, post), and guild message search with jump-to-message.
import { api } from "../lib/api.js";
import { icon } from "./icons.js";
import { h, replace } from "../lib/dom.js";
import { t, formatDate, formatTime } from "../lib/i18n.js";
import { plain } from "../lib/markdown.js";
import { state, cmpId, displayName, channelLabel, isDm, isThread, hue } from "./state.js";
import { MessageList, markdownContext } from "./messages.js";
import { Composer } from "./composer.js";
import { promptDialog, toast } from "./ui.js";

const PRESENCE_ORDER = { online: 0, idle: 1, dnd: 2, offline: 3 };
const drawn = new WeakMap(); // aside -> what it shows, to skip identical redraws
const MOODS = new Set(["tired", "excited", "cheerful", "irritated", "gloomy", "restless", "content", "calm"]);

// --- members --------------------------------------------------------------------------------

function memberRow(userId, guildId, { onMessage }) {
  const user = state.users.get(userId) || {};
  const status = state.presences.get(userId) || "offline";
  const agent = state.agents.get(userId);
  const name = displayName(userId, guildId) || user.username;
  const details = [];
  if (agent?.status && agent.status !== "active") details.push(t(`chat_agent_${agent.status}`));
  const custom = state.customStatus.get(userId);
  // agents' custom status is their mood's label: shown in the page's language when it is one
  const customText = custom && (MOODS.has(custom.text) ? t(`chat_mood_${custom.text}`) : custom.text);
  return h("li", { class: `member ${status}`, "data-user": userId },
    h("span", { class: `avatar small ${hue(userId)}`, "aria-hidden": "true" }, (name || "?").slice(0, 1).toUpperCase(),
      h("span", { class: `presence-dot ${status}` })),
    h("span", { class: "member-text" },
      h("span", { class: "member-name" }, name, user.bot ? h("span", { class: "tag-bot" }, t("chat_bot")) : null),
      h("span", { class: "visually-hidden" }, `, ${t(`chat_presence_${status}`)}`),
      custom ? h("span", { class: "member-status", title: customText }, custom.emoji ? h("span", { "aria-hidden": "true" }, custom.emoji) : null,
        customText ? h("span", {}, customText) : null) : null,
      details.length ? h("span", { class: "member-detail muted" }, details.join(" · ")) : null),
    userId !== state.me.id ? h("button", { type: "button", class: "icon small dm-button", "aria-label": t("chat_message_user", { name }),
      title: t("chat_message_user", { name }), onclick: () => onMessage(userId) }, icon("mail")) : null);
}

export function renderMembers(aside, { onMessage }) {
  const channel = state.channels.get(state.channelId);
  let ids;
  let guildId = null;
  if (state.guildId === "@me") {
    ids = channel && isDm(channel) ? [state.me.id, ...(channel.recipients || []).map((u) => u.id)] : [];
  } else {
    guildId = state.guildId;
    ids = [...(state.members.get(guildId)?.keys() || [])];
  }
  const sorted = ids.sort((a, b) => (PRESENCE_ORDER[state.presences.get(a) || "offline"] - PRESENCE_ORDER[state.presences.get(b) || "offline"])
    || (displayName(a, guildId) || "").localeCompare(displayName(b, guildId) || ""));
  const online = sorted.filter((id) => (state.presences.get(id) || "offline") !== "offline");
  const offline = sorted.filter((id) => !online.includes(id));
  // presence and member events come in bursts: redraw only when what is shown changed
  const signature = JSON.stringify([guildId, online, offline,
    sorted.map((id) => [displayName(id, guildId), state.presences.get(id), state.agents.get(id), state.customStatus.get(id)])]);
  if (drawn.get(aside) === signature) return;
  drawn.set(aside, signature);
  const group = (key, list) => (list.length ? h("section", {}, h("h3", {}, t(key, { count: list.length })),
    h("ul", { class: "member-rows" }, list.map((id) => memberRow(id, guildId, { onMessage })))) : null);
  replace(aside, h("h2", { class: "panel-title" }, t("chat_members")), group("chat_online", online), group("chat_offline", offline));
}

// --- threads --------------------------------------------------------------------------------

export class ThreadsPanel {
  constructor(aside, app) {
    this.aside = aside;
    this.app = app;
    this.threadId = null;
    this.list = null;
    this.composer = null;
  }

  get open() { return !this.aside.hidden && this.aside.dataset.panel === "threads"; }

  threadsOf(channelId) {
    return [...state.channels.values()].filter((c) => isThread(c) && c.parent_id === channelId && !c.thread_metadata?.archived)
      .sort((a, b) => cmpId(b.last_message_id || b.id, a.last_message_id || a.id));
  }

  show() {
    this.threadId = null;
    this.list = null;
    this.composer = null;
    this.aside.hidden = false;
    this.aside.dataset.panel = "threads";
    const parent = state.channels.get(state.channelId);
    const threads = parent ? this.threadsOf(parent.id) : [];
    replace(this.aside,
      h("header", { class: "panel-head" }, h("h2", { class: "panel-title", tabindex: "-1" }, t("chat_threads")),
        h("button", { type: "button", class: "icon", "aria-label": t("close"), onclick: () => this.app.closePanel() }, icon("close"))),
      parent && !isDm(parent) ? h("button", { type: "button", class: "new-thread", onclick: () => this.create(null) }, t("chat_new_thread")) : null,
      threads.length ? h("ul", { class: "thread-rows" }, threads.map((th) => h("li", {},
        h("button", { type: "button", class: "thread-row", onclick: () => this.openThread(th.id) },
          h("span", { class: "thread-name" }, icon("thread"), ` ${th.name}`),
          h("span", { class: "muted small" }, t("chat_thread_count", { count: th.message_count ?? 0 }))))))
        : h("p", { class: "muted pad" }, t("chat_no_threads")));
    this.aside.querySelector(".panel-title").focus();
  }

  async create(message) {
    const suggestion = message ? plain(message.content, markdownContext(message.guild_id)).slice(0, 60) : "";
    const name = await promptDialog(t("chat_thread_name"), suggestion || t("chat_thread"), t("chat_create_thread"));
    if (!name) return;
    try {
      const thread = message
        ? await api("POST", `/channels/${message.channel_id}/messages/${message.id}/threads`, { name })
        : await api("POST", `/channels/${state.channelId}/threads`, { name, type: 11 });
      state.channels.set(thread.id, { ...(state.channels.get(thread.id) || {}), ...thread });
      this.app.mainList?.threadCreated(thread);
      await this.openThread(thread.id);
    } catch (error) {
      toast(t("error_generic", { message: error.message }));
    }
  }

  /** From a message: its thread, or a new one started from it. */
  async fromMessage(message) {
    if (message.thread) await this.openThread(message.thread.id);
    else await this.create(message);
  }

  async openThread(threadId) {
    let thread = state.channels.get(threadId);
    if (!thread?.name) {
      thread = await api("GET", `/channels/${threadId}`);
      state.channels.set(thread.id, thread);
    }
    this.threadId = threadId;
    this.aside.hidden = false;
    this.aside.dataset.panel = "threads";
    this.list = new MessageList(threadId, { inThread: true, reply: (m) => this.composer.reply(m), openChannel: (id) => this.app.openChannelById(id) });
    this.composer = new Composer(threadId, this.list);
    replace(this.aside,
      h("header", { class: "panel-head" },
        h("button", { type: "button", class: "icon", "aria-label": t("chat_all_threads"), title: t("chat_all_threads"), onclick: () => this.show() }, icon("back")),
        h("h2", { class: "panel-title", tabindex: "-1" }, thread.name),
        h("button", { type: "button", class: "icon", "aria-label": t("close"), onclick: () => this.app.closePanel() }, icon("close"))),
      h("div", { class: "thread-view" }, this.list.el, this.composer.el));
    await this.list.loadLatest();
    this.app.ack(threadId, this.list.newestId);
    this.composer.focus();
  }
}

// --- search ---------------------------------------------------------------------------------

export async function showSearch(aside, app, query) {
  aside.hidden = false;
  aside.dataset.panel = "search";
  const guildId = state.guildId;
  const title = h("h2", { class: "panel-title", tabindex: "-1" }, t("chat_search_results"));
  const status = h("p", { class: "muted pad", role: "status" }, t("loading"));
  const results = h("ul", { class: "search-rows" });
  replace(aside, h("header", { class: "panel-head" }, title,
    h("button", { type: "button", class: "icon", "aria-label": t("close"), onclick: () => app.closePanel() }, icon("close"))), status, results);
  title.focus();
  if (!guildId || guildId === "@me") {
    status.textContent = t("chat_search_guild_only");
    return;
  }
  try {
    const found = await api("GET", `/guilds/${guildId}/messages/search`, undefined, { query: { content: query, limit: 25 } });
    status.textContent = t("chat_search_count", { count: found.total_results, query });
    const ctx = markdownContext(guildId);
    results.replaceChildren(...found.messages.map(([m]) => {
      const date = new Date(m.timestamp);
      const channel = state.channels.get(m.channel_id);
      return h("li", {}, h("button", { type: "button", class: "search-hit", onclick: () => app.jumpTo(m.channel_id, m.id) },
        h("span", { class: "hit-meta muted small" }, `#${channelLabel(channel) || m.channel_id} · ${formatDate(date)} ${formatTime(date)}`),
        h("span", { class: "author" }, displayName(m.author.id, guildId) || m.author.username),
        h("span", { class: "hit-text" }, plain(m.content, ctx).slice(0, 200))));
    }));
  } catch (error) {
    status.textContent = t("error_generic", { message: error.message });
  }
}
