// One channel's message list: history pages (`before=` going back, `around=` for a jump),
// live messages merged in by id (so a message is never shown twice, whatever path it came
// by), date separators, grouped authors, and each message's actions.
import { api, blobUrl } from "../lib/api.js";
import { icon } from "./icons.js";
import { h } from "../lib/dom.js";
import { t, formatDate, formatTime, formatFull } from "../lib/i18n.js";
import { render as markdown, plain } from "../lib/markdown.js";
import { state, cmpId, displayName, hue, channelLabel } from "./state.js";
import { emojiPicker, confirmDialog, toast } from "./ui.js";

const PAGE = 50;
const GROUP_SECONDS = 7 * 60; // consecutive messages by one author within this time share a header
const blobs = new Map(); // attachment id -> Promise<object URL>: an image is fetched once per page

export function markdownContext(guildId) {
  return {
    meId: state.me?.id,
    userName: (id) => displayName(id, guildId),
    channelName: (id) => channelLabel(state.channels.get(id)) || null,
    roleName: (id) => state.guilds.get(guildId)?.roles?.find((r) => r.id === id)?.name ?? null,
  };
}

const dayKey = (date) => `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;

function imageOf(attachment) {
  return /^image\/(png|jpeg|gif|webp)$/.test(attachment.content_type || "");
}

export class MessageList {
  /**
   * channelId: the channel (or thread) shown; actions: {reply(msg), openThread(msg), focusComposer()}.
   * `el` is the element to place in the page.
   */
  constructor(channelId, actions = {}) {
    this.channelId = channelId;
    this.actions = actions;
    this.messages = new Map();
    this.order = []; // ids, oldest first
    this.els = new Map();
    this.separators = new Map();
    this.hasOlder = true;
    this.detached = false; // showing an older stretch (after a jump): live messages are not appended
    this.loading = false;
    const channel = state.channels.get(channelId);
    this.start = h("p", { class: "history-start", hidden: true }, t("chat_history_start", { name: channelLabel(channel) }));
    this.spinner = h("p", { class: "history-loading muted", hidden: true }, t("loading"));
    this.list = h("div", { class: "messages", role: "log", "aria-label": t("chat_messages_in", { name: channelLabel(channel) }),
      tabindex: "0" });
    this.present = h("button", { type: "button", class: "jump-present", hidden: true, onclick: () => this.loadLatest() },
      t("chat_jump_present"));
    this.el = h("div", { class: "message-pane" }, this.list, this.present);
    this.list.append(this.start, this.spinner);
    this.list.addEventListener("scroll", () => this._onScroll(), { passive: true });
  }

  get newestId() { return this.order[this.order.length - 1] || null; }

  atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
  }

  scrollToBottom() { this.list.scrollTop = this.list.scrollHeight; }

  _reset() {
    this.messages.clear();
    this.order = [];
    for (const el of this.els.values()) el.remove();
    for (const el of this.separators.values()) el.remove();
    this.els.clear();
    this.separators.clear();
  }

  /** The newest page (also: refetch after a gap the gateway could not replay). */
  async loadLatest() {
    this.loading = true;
    this.spinner.hidden = false;
    try {
      const page = await api("GET", `/channels/${this.channelId}/messages`, undefined, { query: { limit: PAGE } });
      this._reset();
      this.detached = false;
      this.present.hidden = true;
      this.hasOlder = page.length === PAGE;
      for (const m of page) this._put(m);
      this.layout();
      this.scrollToBottom();
    } finally {
      this.loading = false;
      this.spinner.hidden = true;
    }
    this._fill();
  }

  /**
   * Merge what the server has now, keeping what is loaded: after a re-IDENTIFY nothing the
   * gateway missed may be lost, and nothing may appear twice.
   */
  async refresh() {
    if (this.detached) return;
    const wasAtBottom = this.atBottom();
    const page = await api("GET", `/channels/${this.channelId}/messages`, undefined, { query: { limit: PAGE } });
    const oldest = page.length ? String(page[page.length - 1].id) : null;
    // more new messages than one page: the loaded stretch no longer joins the new one, start from the newest page
    if (page.length === PAGE && this.newestId && cmpId(oldest, this.newestId) > 0) {
      await this.loadLatest();
      return;
    }
    // loaded messages inside the refetched window that the server no longer has were deleted meanwhile
    const fresh = new Set(page.map((m) => String(m.id)));
    for (const id of [...this.order]) if ((!oldest || cmpId(id, oldest) >= 0) && !fresh.has(id)) this._drop(id);
    for (const m of page) this._put(m, true);
    this.layout();
    if (wasAtBottom) this.scrollToBottom();
  }

  async loadOlder() {
    if (this.loading || !this.hasOlder || !this.order.length) return;
    this.loading = true;
    this.spinner.hidden = false;
    const before = this.list.scrollHeight - this.list.scrollTop;
    try {
      const page = await api("GET", `/channels/${this.channelId}/messages`, undefined, { query: { before: this.order[0], limit: PAGE } });
      this.hasOlder = page.length === PAGE;
      for (const m of page) this._put(m);
      this.layout();
      this.list.scrollTop = this.list.scrollHeight - before; // keep the reader's place
    } finally {
      this.loading = false;
      this.spinner.hidden = true;
    }
  }

  async loadNewer() {
    if (this.loading || !this.detached) return;
    this.loading = true;
    try {
      const page = await api("GET", `/channels/${this.channelId}/messages`, undefined, { query: { after: this.newestId, limit: PAGE } });
      for (const m of page) this._put(m);
      if (page.length < PAGE) { this.detached = false; this.present.hidden = true; }
      this.layout();
    } finally {
      this.loading = false;
    }
  }

  /** Show message `id` (loading the history around it if needed) and highlight it. */
  async jumpTo(id) {
    if (!this.messages.has(id)) {
      const page = await api("GET", `/channels/${this.channelId}/messages`, undefined, { query: { around: id, limit: PAGE } });
      this._reset();
      for (const m of page) this._put(m);
      this.hasOlder = true;
      const channel = state.channels.get(this.channelId);
      this.detached = Boolean(channel?.last_message_id && this.newestId && cmpId(this.newestId, channel.last_message_id) < 0);
      this.present.hidden = !this.detached;
      this.layout();
    }
    const el = this.els.get(id);
    if (!el) return;
    el.scrollIntoView({ block: "center" });
    el.classList.add("flash");
    el.focus({ preventScroll: true });
    setTimeout(() => el.classList.remove("flash"), 2500);
  }

  _onScroll() {
    if (this.list.scrollTop < 300) this.loadOlder();
    if (this.detached && this.atBottom()) this.loadNewer();
  }

  // Keep loading until the list can scroll (a tall screen, short messages).
  async _fill() {
    while (this.hasOlder && !this.loading && this.list.scrollHeight <= this.list.clientHeight + 10 && this.order.length) {
      const count = this.order.length;
      await this.loadOlder();
      if (this.order.length === count) break;
    }
  }

  /** Insert or replace one message; returns true when it was new. */
  _put(message, rerender = false) {
    const id = String(message.id);
    const known = this.messages.has(id);
    this.messages.set(id, message);
    if (!known) {
      // most messages arrive in order: a quick check before a sorted insert
      if (!this.order.length || cmpId(this.order[this.order.length - 1], id) < 0) this.order.push(id);
      else {
        let i = this.order.length;
        while (i > 0 && cmpId(this.order[i - 1], id) > 0) i--;
        this.order.splice(i, 0, id);
      }
      this.els.set(id, this._render(message));
    } else if (rerender) {
      this._rerender(id);
    }
    return !known;
  }

  _drop(id) {
    this.messages.delete(id);
    this.order = this.order.filter((x) => x !== id);
    this.els.get(id)?.remove();
    this.els.delete(id);
  }

  // --- live updates -------------------------------------------------------------------

  /** A message from the gateway or our own send. */
  add(message) {
    if (this.detached) return;
    const wasAtBottom = this.atBottom();
    if (!this._put(message)) return;
    this.layout();
    if (wasAtBottom || message.author?.id === state.me?.id) this.scrollToBottom();
  }

  update(message) {
    const id = String(message.id);
    const old = this.messages.get(id);
    if (!old) return;
    // MESSAGE_UPDATE carries the full message; keep fields a partial update might lack
    this.messages.set(id, { ...old, ...message, reactions: message.reactions ?? old.reactions });
    this._rerender(id);
  }

  remove(id) {
    if (!this.messages.has(id)) return;
    this._drop(id);
    this.layout();
  }

  reaction(kind, d) {
    const message = this.messages.get(d.message_id);
    if (!message) return;
    let reactions = [...(message.reactions || [])];
    const mine = d.user_id === state.me?.id;
    if (kind === "REMOVE_ALL") reactions = [];
    else if (kind === "REMOVE_EMOJI") reactions = reactions.filter((r) => r.emoji.name !== d.emoji.name);
    else {
      const i = reactions.findIndex((r) => r.emoji.name === d.emoji.name);
      if (kind === "ADD") {
        if (i < 0) reactions.push({ emoji: { id: null, name: d.emoji.name }, count: 1, me: mine });
        else reactions[i] = { ...reactions[i], count: reactions[i].count + 1, me: reactions[i].me || mine };
      } else if (i >= 0) {
        const r = { ...reactions[i], count: reactions[i].count - 1, me: mine ? false : reactions[i].me };
        if (r.count <= 0) reactions.splice(i, 1); else reactions[i] = r;
      }
    }
    this.messages.set(d.message_id, { ...message, reactions });
    this._rerender(d.message_id);
  }

  threadCreated(thread) {
    const message = this.messages.get(thread.id);
    if (message && !message.thread) {
      this.messages.set(thread.id, { ...message, thread: { id: thread.id } });
      this._rerender(thread.id);
    }
  }

  _rerender(id) {
    const old = this.els.get(id);
    if (!old) return;
    const fresh = this._render(this.messages.get(id));
    fresh.className = old.className;
    old.replaceWith(fresh);
    this.els.set(id, fresh);
  }

  // --- layout ---------------------------------------------------------------------------

  /** Put every message in order, with a separator where the day changes and grouped authors. */
  layout() {
    const wanted = [this.start, this.spinner];
    this.start.hidden = this.hasOlder || this.detached;
    let previous = null;
    const usedDays = new Set();
    for (const id of this.order) {
      const message = this.messages.get(id);
      const date = new Date(message.timestamp);
      const day = dayKey(date);
      const el = this.els.get(id);
      const newDay = !previous || dayKey(new Date(previous.timestamp)) !== day;
      if (newDay) {
        usedDays.add(day);
        if (!this.separators.has(day)) {
          this.separators.set(day, h("div", { class: "day-separator", role: "separator", "aria-label": formatDate(date) },
            h("span", {}, formatDate(date))));
        }
        wanted.push(this.separators.get(day));
      }
      const grouped = !newDay && previous.author.id === message.author.id && !message.message_reference
        && (date - new Date(previous.timestamp)) / 1000 < GROUP_SECONDS && message.type === previous.type;
      el.classList.toggle("grouped", grouped);
      wanted.push(el);
      previous = message;
    }
    for (const [day, sep] of this.separators) if (!usedDays.has(day)) { sep.remove(); this.separators.delete(day); }
    // move only what is out of place (so a screen reader is not told the whole log again)
    let cursor = this.list.firstChild;
    for (const node of wanted) {
      if (cursor === node) { cursor = cursor.nextSibling; continue; }
      this.list.insertBefore(node, cursor);
    }
    while (cursor) { const next = cursor.nextSibling; cursor.remove(); cursor = next; }
  }

  // --- one message ----------------------------------------------------------------------

  _render(message) {
    const guildId = message.guild_id || null;
    const ctx = { ...markdownContext(guildId), onChannel: (id) => this.actions.openChannel?.(id) };
    const author = message.author || {};
    const name = displayName(author.id, guildId) || author.username;
    const mine = author.id === state.me?.id;
    const date = new Date(message.timestamp);
    const headId = `m-${message.id}-author`;
    const el = h("article", { class: "msg", "data-id": message.id, "aria-labelledby": headId, tabindex: "-1" },
      h("div", { class: `avatar ${hue(author.id)}`, "aria-hidden": "true" }, (name || "?").slice(0, 1).toUpperCase()),
      h("div", { class: "msg-main" },
        message.referenced_message !== undefined && message.message_reference ? this._replyLine(message) : null,
        h("header", { class: "msg-head" },
          h("span", { class: "author", id: headId }, name),
          author.bot ? h("span", { class: "tag-bot" }, t("chat_bot")) : null,
          h("time", { datetime: message.timestamp, title: formatFull(date) }, formatTime(date))),
        h("div", { class: `msg-body${message.mentions?.some((u) => u.id === state.me?.id) ? " mentions-me" : ""}` },
          markdown(message.content, ctx),
          message.edited_timestamp ? h("span", { class: "edited muted" }, ` ${t("chat_edited")}`) : null),
        this._attachments(message),
        this._reactions(message),
        message.thread && !this.actions.inThread ? h("button", { type: "button", class: "thread-link", onclick: () => this.actions.openThread?.(message) },
          icon("thread"), channelLabel(state.channels.get(message.thread.id)) || t("chat_thread")) : null),
      this._toolbar(message, mine));
    el.classList.toggle("mine", mine);
    return el;
  }

  _replyLine(message) {
    const ref = message.referenced_message;
    if (!ref) return h("div", { class: "reply-line muted" }, t("chat_reply_deleted"));
    const name = displayName(ref.author.id, message.guild_id) || ref.author.username;
    const text = plain(ref.content, markdownContext(message.guild_id || null));
    const snippet = text.length > 90 ? `${text.slice(0, 90)}…` : text;
    return h("button", { type: "button", class: "reply-line", onclick: () => this.jumpTo(ref.id),
      "aria-label": t("chat_reply_to", { name, text: snippet }) },
    h("span", { class: "author" }, `@${name}`), " ", h("span", { class: "muted" }, snippet || t("chat_attachment")));
  }

  _attachments(message) {
    if (!message.attachments?.length) return null;
    return h("div", { class: "attachments" }, message.attachments.map((a) => {
      if (imageOf(a)) {
        const img = h("img", { alt: a.description || a.filename, class: "attachment-image", loading: "lazy",
          width: a.width || null, height: a.height || null });
        if (!blobs.has(a.id)) blobs.set(a.id, blobUrl(a.url));
        blobs.get(a.id).then((url) => {
          const stick = this.atBottom();
          img.src = url;
          img.addEventListener("load", () => { if (stick) this.scrollToBottom(); }, { once: true });
        }).catch(() => img.replaceWith(h("span", { class: "error" }, t("chat_attachment_failed", { name: a.filename }))));
        return h("figure", { class: "attachment" }, img, h("figcaption", { class: "muted" }, a.filename));
      }
      return h("button", { type: "button", class: "attachment-file", onclick: async () => {
        const url = await blobUrl(a.url);
        const link = h("a", { href: url, download: a.filename });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } }, icon("file"), ` ${a.filename} (${Math.ceil(a.size / 1024)} KB)`);
    }));
  }

  _reactions(message) {
    if (!message.reactions?.length) return null;
    return h("div", { class: "reactions" }, message.reactions.map((r) => h("button", {
      type: "button", class: `reaction${r.me ? " me" : ""}`, "aria-pressed": String(Boolean(r.me)),
      "aria-label": t(r.me ? "chat_reaction_remove" : "chat_reaction_add", { emoji: r.emoji.name, count: r.count }),
      onclick: () => this.toggleReaction(message, r.emoji.name, !r.me),
    }, `${r.emoji.name} ${r.count}`)));
  }

  async toggleReaction(message, emoji, add) {
    try {
      await api(add ? "PUT" : "DELETE", `/channels/${message.channel_id}/messages/${message.id}/reactions/${encodeURIComponent(emoji)}/@me`);
    } catch (error) {
      toast(t("error_generic", { message: error.message }));
    }
  }

  _toolbar(message, mine) {
    const button = (label, icon, onclick, extra = "") => h("button", { type: "button", class: `icon ${extra}`, title: label,
      "aria-label": label, onclick }, icon);
    const react = button(t("chat_add_reaction"), icon("smile"), () => emojiPicker(react, (emoji) => this.toggleReaction(message, emoji, true)));
    return h("div", { class: "msg-actions", role: "toolbar", "aria-label": t("chat_message_actions") },
      react,
      button(t("chat_reply"), icon("reply"), () => this.actions.reply?.(message)),
      this.actions.inThread || !this.actions.openThread ? null : button(t("chat_thread_open"), icon("thread"), () => this.actions.openThread(message)),
      mine ? button(t("edit"), icon("edit"), () => this.edit(message)) : null,
      mine ? button(t("delete"), icon("trash"), () => this.delete(message), "danger") : null);
  }

  edit(message) {
    const el = this.els.get(message.id);
    const body = el?.querySelector(".msg-body");
    if (!body) return;
    const area = h("textarea", { class: "edit-box", rows: "2", "aria-label": t("chat_edit_message") });
    area.value = message.content;
    const done = () => this._rerender(message.id);
    const save = async () => {
      const content = area.value.trim();
      if (!content) { this.delete(message); return; }
      try {
        this.update(await api("PATCH", `/channels/${message.channel_id}/messages/${message.id}`, { content }));
      } catch (error) {
        toast(t("error_generic", { message: error.message }));
        done();
      }
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); save(); }
      if (e.key === "Escape") { e.preventDefault(); done(); }
    });
    body.replaceWith(h("form", { class: "edit-form", onsubmit: (e) => { e.preventDefault(); save(); } }, area,
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t("save")),
        h("button", { type: "button", onclick: done }, t("cancel")),
        h("span", { class: "muted small" }, t("chat_edit_hint")))));
    area.focus();
  }

  async delete(message) {
    if (!await confirmDialog(t("chat_delete_confirm"), t("delete"))) return;
    try {
      await api("DELETE", `/channels/${message.channel_id}/messages/${message.id}`);
      this.remove(message.id);
    } catch (error) {
      toast(t("error_generic", { message: error.message }));
    }
  }

  destroy() {
    this.el.remove();
  }
}

