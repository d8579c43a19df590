// The sidebar: the guild rail (with the direct-messages home first), the open guild's channels
// or the DM list, each with unread and mention badges from the read states.
import { icon } from "./icons.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { state, cmpId, channelLabel, isDm, isThread, hue } from "./state.js";

export function unreadOf(channelId) {
  const rs = state.readStates.get(channelId);
  const channel = state.channels.get(channelId);
  const unread = rs ? rs.unread_count > 0 : Boolean(channel?.last_message_id);
  return { unread, mentions: rs?.mention_count || 0 };
}

function badge(count, labelKey) {
  if (!count) return null;
  return h("span", { class: "badge mention", "aria-label": t(labelKey, { count }) }, count > 99 ? "99+" : formatNumber(count));
}

function guildTotals(guildId) {
  let unread = false;
  let mentions = 0;
  for (const channel of state.channels.values()) {
    const inside = guildId === "@me" ? isDm(channel) : channel.guild_id === guildId && !isThread(channel);
    if (!inside || channel.type === 4) continue;
    const u = unreadOf(channel.id);
    unread ||= u.unread;
    mentions += u.mentions;
  }
  return { unread, mentions };
}

export function channelHref(channel) {
  return isDm(channel) ? `/app/@me/${channel.id}` : `/app/${channel.guild_id}/${channel.id}`;
}

function guildButton(id, name, label) {
  const totals = guildTotals(id);
  const current = state.guildId === id;
  return h("li", {}, h("a", {
    href: id === "@me" ? "/app/@me" : `/app/${id}`, class: `guild${current ? " current" : ""}${totals.unread ? " unread" : ""}`,
    "aria-current": current ? "page" : null, title: label, "data-guild": id,
    "aria-label": [label, totals.unread ? t("chat_unread") : null].filter(Boolean).join(", "),
  }, h("span", { class: `guild-icon ${id === "@me" ? "home" : hue(id)}`, "aria-hidden": "true" }, name), badge(totals.mentions, "chat_mentions_count")));
}

function channelItem(channel) {
  const { unread, mentions } = unreadOf(channel.id);
  const current = state.channelId === channel.id;
  const prefix = isDm(channel) ? "@" : "#";
  const label = channelLabel(channel);
  return h("li", {}, h("a", {
    href: channelHref(channel), class: `channel${current ? " current" : ""}${unread ? " unread" : ""}`, "data-channel": channel.id,
    "aria-current": current ? "page" : null,
  }, h("span", { class: "channel-prefix", "aria-hidden": "true" }, prefix), h("span", { class: "channel-name" }, label),
  unread && !mentions ? h("span", { class: "visually-hidden" }, `, ${t("chat_unread")}`) : null,
  badge(mentions, "chat_mentions_count")));
}

/** Re-render the whole sidebar (it is small). */
export function renderSidebar(nav, { onLogout }) {
  const guilds = [...state.guilds.values()].sort((a, b) => cmpId(a.id, b.id));
  const rail = h("ul", { class: "guild-rail", "aria-label": t("chat_societies") },
    guildButton("@me", icon("mail"), t("chat_direct_messages")),
    guilds.map((g) => guildButton(g.id, g.name.slice(0, 2).toUpperCase(), g.name)));
  let column;
  if (state.guildId === "@me") {
    const dms = [...state.channels.values()].filter(isDm)
      .sort((a, b) => cmpId(b.last_message_id || b.id, a.last_message_id || a.id));
    column = [h("h2", { class: "column-title" }, t("chat_direct_messages")),
      dms.length ? h("ul", { class: "channel-list" }, dms.map(channelItem)) : h("p", { class: "muted small pad" }, t("chat_no_dms"))];
  } else {
    const guild = state.guilds.get(state.guildId);
    const channels = [...state.channels.values()].filter((c) => c.guild_id === state.guildId && !isThread(c));
    const categories = channels.filter((c) => c.type === 4).sort((a, b) => a.position - b.position || cmpId(a.id, b.id));
    const text = channels.filter((c) => c.type === 0 || c.type === 5).sort((a, b) => a.position - b.position || cmpId(a.id, b.id));
    const loose = text.filter((c) => !c.parent_id || !categories.some((k) => k.id === c.parent_id));
    column = [h("h2", { class: "column-title" }, guild?.name || ""),
      h("ul", { class: "channel-list", "aria-label": t("chat_channels") }, loose.map(channelItem)),
      categories.map((k) => {
        const inside = text.filter((c) => c.parent_id === k.id);
        return inside.length ? h("section", { class: "category" }, h("h3", {}, k.name),
          h("ul", { class: "channel-list", "aria-label": k.name }, inside.map(channelItem))) : null;
      })];
  }
  const me = state.me;
  replace(nav,
    rail,
    h("div", { class: "channel-column" },
      h("div", { class: "column-scroll" }, column),
      h("footer", { class: "me-box" },
        h("span", { class: `avatar small ${hue(me.id)}`, "aria-hidden": "true" }, (me.global_name || me.username).slice(0, 1).toUpperCase()),
        h("span", { class: "me-name" }, me.global_name || me.username),
        me.townsquare_admin ? h("a", { href: "/admin", class: "small" }, t("admin_title")) : null,
        h("button", { type: "button", class: "icon small", onclick: onLogout }, t("logout")))));
}
