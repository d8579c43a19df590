// The composer: text with @mention autocomplete (inserting <@id>), replies, file uploads with
// progress and image previews, the typing indicator going out, and the up-arrow edit shortcut.
import { api, upload } from "../lib/api.js";
import { icon } from "./icons.js";
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { state, displayName, channelLabel, isDm } from "./state.js";
import { toast } from "./ui.js";

const TYPING_EVERY_MS = 8000; // the server forwards at most one TYPING_START per 5 s anyway
const MAX_SUGGESTIONS = 8;
let composerCount = 0;

function nonce() {
  // a client nonce: a retried send is not posted twice
  return `${Date.now()}${Math.floor(Math.random() * 1e6)}`.slice(0, 25);
}

export class Composer {
  /** channelId; list: the MessageList it posts into. */
  constructor(channelId, list) {
    this.channelId = channelId;
    this.list = list;
    this.replyTo = null;
    this.files = [];
    this.lastTyping = 0;
    this.suggestions = [];
    this.active = 0;
    this.sending = false;
    const n = ++composerCount;
    const channel = state.channels.get(channelId);
    const label = isDm(channel) ? t("chat_message_to", { name: channelLabel(channel) }) : t("chat_message_in", { name: channelLabel(channel) });
    this.listbox = h("ul", { class: "mention-list", role: "listbox", id: `mentions-${n}`, hidden: true, "aria-label": t("chat_mention_suggestions") });
    this.input = h("textarea", { class: "composer-input", rows: "1", placeholder: label, "aria-label": label, maxlength: "4000",
      role: "combobox", "aria-autocomplete": "list", "aria-controls": this.listbox.id, "aria-expanded": "false" });
    this.replyBar = h("div", { class: "reply-bar", hidden: true });
    this.previews = h("ul", { class: "upload-previews", hidden: true, "aria-label": t("chat_files_to_send") });
    this.progress = h("progress", { class: "upload-progress", max: "100", value: "0", hidden: true, "aria-label": t("chat_upload_progress") });
    this.fileInput = h("input", { type: "file", multiple: true, class: "visually-hidden", id: `file-${n}`, tabindex: "-1",
      onchange: () => { this.addFiles([...this.fileInput.files]); this.fileInput.value = ""; } });
    const attach = h("button", { type: "button", class: "icon attach", "aria-label": t("chat_attach"), title: t("chat_attach"),
      onclick: () => this.fileInput.click() }, icon("attach"));
    this.sendButton = h("button", { type: "submit", class: "primary send" }, t("chat_send"));
    this.el = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.replyBar, this.previews, this.progress, this.listbox,
      h("div", { class: "composer-row" }, attach, this.fileInput, this.input, this.sendButton));
    this.input.addEventListener("input", () => { this._autosize(); this._typing(); this._suggest(); });
    this.input.addEventListener("keydown", (e) => this._keys(e));
    this.input.addEventListener("blur", () => setTimeout(() => this._closeSuggestions(), 150));
    this.input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) { e.preventDefault(); this.addFiles(files); }
    });
    this.el.addEventListener("dragover", (e) => { if (e.dataTransfer?.types?.includes("Files")) e.preventDefault(); });
    this.el.addEventListener("drop", (e) => {
      if (e.dataTransfer?.files?.length) { e.preventDefault(); this.addFiles([...e.dataTransfer.files]); }
    });
  }

  focus() { this.input.focus(); }

  _autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(200, this.input.scrollHeight)}px`;
  }

  _typing() {
    const now = Date.now();
    if (!this.input.value.trim() || now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    api("POST", `/channels/${this.channelId}/typing`).catch(() => {});
  }

  // --- replies ----------------------------------------------------------------------------

  reply(message) {
    this.replyTo = message;
    const name = displayName(message.author.id, message.guild_id) || message.author.username;
    this.replyBar.replaceChildren(
      h("span", {}, t("chat_replying_to", { name })),
      h("button", { type: "button", class: "icon", "aria-label": t("chat_cancel_reply"), onclick: () => this.cancelReply() }, icon("close")));
    this.replyBar.hidden = false;
    this.focus();
  }

  cancelReply() {
    this.replyTo = null;
    this.replyBar.hidden = true;
    this.replyBar.replaceChildren();
  }

  // --- files ------------------------------------------------------------------------------

  addFiles(files) {
    for (const file of files.slice(0, 10 - this.files.length)) this.files.push({ file, url: file.type.startsWith("image/") ? URL.createObjectURL(file) : null });
    this._showFiles();
    this.focus();
  }

  _showFiles() {
    this.previews.hidden = !this.files.length;
    this.previews.replaceChildren(...this.files.map((entry, i) => h("li", { class: "upload-preview" },
      entry.url ? h("img", { src: entry.url, alt: entry.file.name }) : h("span", { class: "file-icon" }, icon("file")),
      h("span", { class: "file-name" }, entry.file.name),
      h("button", { type: "button", class: "icon", "aria-label": t("chat_remove_file", { name: entry.file.name }),
        onclick: () => { if (entry.url) URL.revokeObjectURL(entry.url); this.files.splice(i, 1); this._showFiles(); } }, icon("close")))));
  }

  // --- sending ----------------------------------------------------------------------------

  async send() {
    const content = this.input.value.trim();
    if (this.sending || (!content && !this.files.length)) return;
    this.sending = true;
    this.sendButton.disabled = true;
    const body = { content, nonce: nonce() };
    if (this.replyTo) body.message_reference = { message_id: this.replyTo.id, fail_if_not_exists: false };
    try {
      let message;
      if (this.files.length) {
        const form = new FormData();
        body.attachments = this.files.map((entry, i) => ({ id: i, filename: entry.file.name }));
        form.append("payload_json", JSON.stringify(body));
        this.files.forEach((entry, i) => form.append(`files[${i}]`, entry.file, entry.file.name));
        this.progress.hidden = false;
        this.progress.value = 0;
        message = await upload(`/channels/${this.channelId}/messages`, form, (f) => { this.progress.value = Math.round(f * 100); });
        for (const entry of this.files) if (entry.url) URL.revokeObjectURL(entry.url);
        this.files = [];
        this._showFiles();
      } else {
        message = await api("POST", `/channels/${this.channelId}/messages`, body);
      }
      this.input.value = "";
      this._autosize();
      this.cancelReply();
      this.lastTyping = 0;
      this.list.add(message);
    } catch (error) {
      toast(t("chat_send_failed", { message: error.message }));
    } finally {
      this.sending = false;
      this.sendButton.disabled = false;
      this.progress.hidden = true;
      this.focus();
    }
  }

  // --- mention autocomplete -----------------------------------------------------------------

  _candidates() {
    const channel = state.channels.get(this.channelId);
    if (isDm(channel)) return (channel.recipients || []).map((u) => ({ id: u.id, user: u }));
    const members = state.members.get(channel?.guild_id) || new Map();
    return [...members.values()].map((m) => ({ id: m.user.id, user: m.user, nick: m.nick }));
  }

  _suggest() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const match = /(^|\s)@([^\s@<>]{0,32})$/.exec(before);
    if (!match) { this._closeSuggestions(); return; }
    const q = match[2].toLowerCase();
    const channel = state.channels.get(this.channelId);
    this.suggestions = this._candidates()
      .filter((c) => c.id !== state.me.id)
      .filter((c) => [c.user.username, c.user.global_name, c.nick].some((s) => s && s.toLowerCase().includes(q)))
      .sort((a, b) => Number(!(a.user.username.toLowerCase().startsWith(q))) - Number(!(b.user.username.toLowerCase().startsWith(q))))
      .slice(0, MAX_SUGGESTIONS);
    this.query = match[2];
    this.active = 0;
    if (!this.suggestions.length) { this._closeSuggestions(); return; }
    this.listbox.replaceChildren(...this.suggestions.map((c, i) => h("li", {
      role: "option", id: `${this.listbox.id}-${i}`, "aria-selected": String(i === 0), class: "mention-option",
      onpointerdown: (e) => { e.preventDefault(); this._pick(i); },
    }, h("span", { class: "name" }, displayName(c.id, channel?.guild_id) || c.user.username),
    h("span", { class: "muted" }, ` @${c.user.username}`),
    c.user.bot ? h("span", { class: "tag-bot" }, t("chat_bot")) : null)));
    this.listbox.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.listbox.id}-0`);
  }

  _move(delta) {
    this.active = (this.active + delta + this.suggestions.length) % this.suggestions.length;
    [...this.listbox.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
    this.input.setAttribute("aria-activedescendant", `${this.listbox.id}-${this.active}`);
  }

  _pick(i) {
    const c = this.suggestions[i];
    if (!c) return;
    const caret = this.input.selectionStart;
    const start = caret - this.query.length - 1;
    const value = this.input.value;
    const insert = `<@${c.id}> `;
    this.input.value = value.slice(0, start) + insert + value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = start + insert.length;
    this._closeSuggestions();
    this.input.focus();
  }

  _closeSuggestions() {
    this.suggestions = [];
    this.listbox.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  _keys(e) {
    if (this.suggestions.length) {
      if (e.key === "ArrowDown") { e.preventDefault(); this._move(1); return; }
      if (e.key === "ArrowUp") { e.preventDefault(); this._move(-1); return; }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); this._pick(this.active); return; }
      if (e.key === "Escape") { e.preventDefault(); this._closeSuggestions(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); return; }
    if (e.key === "Escape" && this.replyTo) { e.preventDefault(); this.cancelReply(); return; }
    if (e.key === "ArrowUp" && !this.input.value) {
      // edit my last message, as in most chat clients
      const mine = [...this.list.order].reverse().map((id) => this.list.messages.get(id)).find((m) => m.author.id === state.me.id);
      if (mine) { e.preventDefault(); this.list.edit(mine); }
    }
  }
}
