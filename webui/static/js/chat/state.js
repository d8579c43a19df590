// The chat client's shared state: what the REST API and the gateway told us, in maps keyed by
// id, plus a tiny event bus the views listen to.

export const state = {
  me: null,
  guilds: new Map(), // id -> guild
  channels: new Map(), // id -> channel (guild channels, threads and DMs)
  members: new Map(), // guild id -> Map(user id -> member)
  users: new Map(), // id -> user
  presences: new Map(), // user id -> "online" | "idle" | "dnd" | "offline"
  customStatus: new Map(), // user id -> {emoji, text}: a presence's custom status (agents show their mood there)
  readStates: new Map(), // channel id -> {last_message_id, unread_count, mention_count}
  agents: new Map(), // user id -> {status} (from AGENT_* events)
  guildId: null, // the open guild, or "@me" for direct messages
  channelId: null,
};

export const bus = new EventTarget();
export const emit = (name, detail) => bus.dispatchEvent(new CustomEvent(name, { detail }));
export const on = (name, fn) => bus.addEventListener(name, (e) => fn(e.detail));

/** Snowflake order on strings (no BigInt needed: longer is larger, then lexical). */
export function cmpId(a, b) {
  a = String(a); b = String(b);
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

export function rememberUser(user) {
  if (user?.id) state.users.set(user.id, { ...(state.users.get(user.id) || {}), ...user });
}

export function rememberMember(guildId, member) {
  if (!member?.user) return;
  rememberUser(member.user);
  if (!state.members.has(guildId)) state.members.set(guildId, new Map());
  state.members.get(guildId).set(member.user.id, member);
}

/** A presence (GUILD_CREATE's or a PRESENCE_UPDATE): its status and its custom status (activity type 4). */
export function rememberPresence(presence) {
  const id = presence.user.id;
  state.presences.set(id, presence.status);
  const custom = presence.status !== "offline" && (presence.activities || []).find((a) => a?.type === 4);
  const text = custom ? String(custom.state || "").slice(0, 128) : "";
  const emoji = custom?.emoji?.name ? String(custom.emoji.name).slice(0, 16) : "";
  if (text || emoji) state.customStatus.set(id, { emoji, text });
  else state.customStatus.delete(id);
}

export function rememberChannel(channel) {
  state.channels.set(channel.id, { ...(state.channels.get(channel.id) || {}), ...channel });
  for (const user of channel.recipients || []) rememberUser(user);
}

/** The name to show: the guild nick, else the display name, else the username. */
export function displayName(userId, guildId = state.guildId) {
  const member = state.members.get(guildId)?.get(userId);
  const user = state.users.get(userId) || member?.user;
  return member?.nick || user?.global_name || user?.username || null;
}

export function channelLabel(channel) {
  if (!channel) return "";
  if (channel.type === 1 || channel.type === 3) {
    return channel.name || (channel.recipients || []).map((u) => displayName(u.id, null) || u.username).join(", ");
  }
  return channel.name;
}

export const isDm = (channel) => channel && (channel.type === 1 || channel.type === 3);
export const isThread = (channel) => channel && [10, 11, 12].includes(channel.type);

/** A stable colour class for someone's avatar. */
export function hue(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.charCodeAt(0)) % 8;
  return `hue-${n}`;
}

/** Does this message mention me (directly, @everyone, or one of my roles)? */
export function mentionsMe(message) {
  const me = state.me?.id;
  if (!me || message.author?.id === me) return false;
  if (message.mention_everyone || (message.mentions || []).some((u) => u.id === me)) return true;
  const mine = message.guild_id && state.members.get(message.guild_id)?.get(me)?.roles;
  return Boolean(mine && (message.mention_roles || []).some((r) => mine.includes(r)));
}
