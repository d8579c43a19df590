// A minimal, safe markdown renderer for messages: **bold**, *italics* / _italics_, `inline code`,
// ```lang fenced code blocks``` (highlighted), links (http and https only), and Discord's
// mentions <@id> <#id> <@&id> as chips. It builds DOM nodes; user text only ever becomes text nodes.
import { highlight, languageOf } from "./highlight.js";

const FENCE = /```([\w+#.-]*)\n?([\s\S]*?)(?:```|$)/g;
// One alternative per inline construct; the earliest match wins, then the rest is scanned again.
const INLINE = new RegExp([
  /(`+)([\s\S]*?[^`])\1(?!`)/.source, // 1,2 inline code
  /\*\*([\s\S]+?)\*\*(?!\*)/.source, // 3 bold
  /\*([^*\s](?:[\s\S]*?[^*\s])?)\*/.source, // 4 italics
  /\b_([^_\s](?:[\s\S]*?[^_\s])?)_\b/.source, // 5 italics
  /<@!?(\d{1,20})>/.source, // 6 user mention
  /<#(\d{1,20})>/.source, // 7 channel mention
  /<@&(\d{1,20})>/.source, // 8 role mention
  /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s)]{1,2000})\)/.source, // 9,10 named link
  /(https?:\/\/[^\s<>]*[^\s<>.,;:!?)\]'"])/.source, // 11 bare link
].join("|"), "g");
const MAX_DEPTH = 6;

function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, children) {
  const a = document.createElement("a");
  a.href = href;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  a.append(...children);
  return a;
}

function chip(kind, id, label, onClick) {
  const el = document.createElement(onClick ? "button" : "span");
  if (onClick) {
    el.type = "button";
    el.addEventListener("click", () => onClick(id));
  }
  el.className = `mention mention-${kind}`;
  el.dataset.id = id;
  el.textContent = label;
  return el;
}

function inline(text, ctx, depth) {
  const nodes = [];
  if (depth > MAX_DEPTH) return [document.createTextNode(text)];
  let last = 0;
  INLINE.lastIndex = 0;
  for (let m = INLINE.exec(text); m; m = INLINE.exec(text)) {
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    // the regex is shared: remember where this scan stands across the recursive calls below
    const resume = INLINE.lastIndex;
    if (m[2] !== undefined) {
      const code = document.createElement("code");
      code.textContent = m[2];
      nodes.push(code);
    } else if (m[3] !== undefined) {
      const b = document.createElement("strong");
      b.append(...inline(m[3], ctx, depth + 1));
      nodes.push(b);
    } else if (m[4] !== undefined || m[5] !== undefined) {
      const em = document.createElement("em");
      em.append(...inline(m[4] ?? m[5], ctx, depth + 1));
      nodes.push(em);
    } else if (m[6] !== undefined) {
      const name = ctx.userName?.(m[6]);
      const node = chip("user", m[6], `@${name ?? m[6]}`, ctx.onUser);
      if (m[6] === ctx.meId) node.classList.add("mention-me");
      nodes.push(node);
    } else if (m[7] !== undefined) {
      nodes.push(chip("channel", m[7], `#${ctx.channelName?.(m[7]) ?? m[7]}`, ctx.onChannel));
    } else if (m[8] !== undefined) {
      nodes.push(chip("role", m[8], `@${ctx.roleName?.(m[8]) ?? m[8]}`, null));
    } else if (m[9] !== undefined) {
      const href = safeHref(m[10]);
      nodes.push(href ? link(href, inline(m[9], ctx, depth + 1)) : document.createTextNode(m[0]));
    } else if (m[11] !== undefined) {
      const href = safeHref(m[11]);
      nodes.push(href ? link(href, [document.createTextNode(m[11])]) : document.createTextNode(m[11]));
    }
    INLINE.lastIndex = resume;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/**
 * render("**hi** <@123>", {meId, userName(id), channelName(id), roleName(id), onUser(id), onChannel(id)})
 * -> a DocumentFragment. Fenced code blocks become <pre><code class="hl" data-lang> with highlighting.
 */
export function render(source, ctx = {}) {
  const fragment = document.createDocumentFragment();
  const text = String(source ?? "");
  let last = 0;
  FENCE.lastIndex = 0;
  for (let m = FENCE.exec(text); m; m = FENCE.exec(text)) {
    if (m.index > last) fragment.append(...inline(text.slice(last, m.index), ctx, 0));
    last = m.index + m[0].length;
    let lang = m[1];
    let code = m[2];
    // "```not-a-language words```" on one line: the word belongs to the code
    if (lang && !languageOf(lang) && !m[0].startsWith(`\`\`\`${lang}\n`)) { code = `${lang}${code}`; lang = ""; }
    const pre = document.createElement("pre");
    const el = document.createElement("code");
    el.className = "hl";
    const known = languageOf(lang);
    if (known) el.dataset.lang = known;
    el.append(highlight(code.replace(/\n$/, ""), known));
    pre.append(el);
    fragment.append(pre);
  }
  if (last < text.length) fragment.append(...inline(text.slice(last), ctx, 0));
  return fragment;
}

/** The message as plain text, for previews (replies, notifications): mentions resolved, markup dropped. */
export function plain(source, ctx = {}) {
  return String(source ?? "")
    .replace(/<@!?(\d+)>/g, (_, id) => `@${ctx.userName?.(id) ?? id}`)
    .replace(/<#(\d+)>/g, (_, id) => `#${ctx.channelName?.(id) ?? id}`)
    .replace(/```[\w+#.-]*\n?/g, "").replace(/[*_`]/g, "");
}
