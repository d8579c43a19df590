// The conformance script's discord.js bot (tests/compat/bots.py drives it): one JSON command per
// line on stdin, one JSON answer per line on stdout ({n, ok, result | error}).
// discord.js is configured only through its documented options: `rest.api` is Townsquare's
// API base, and the gateway URL comes from GET /gateway/bot like on Discord.
import { createInterface } from "node:readline";
import { Client, Events, GatewayIntentBits, MessageFlags, Partials } from "discord.js";

const WAIT_MS = 60_000;
let client = null;
const messages = new Map();
const order = [];
const reactions = [];
const typing = [];
const rawReactionMembers = new Map(); // `${message_id}:${user_id}` -> the member.user.id of the raw MESSAGE_REACTION_ADD
const errors = [];
let resumes = 0;
let reconnects = 0; // op 7 RECONNECT frames discord.js acted on
let readies = 0; // READY: the first IDENTIFY, and every new session after one that could not resume
let waiters = [];

function changed() {
  const pending = waiters;
  waiters = [];
  for (const check of pending) check();
}

function until(found, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS / 1000} s (errors: ${errors.join("; ")})`)), WAIT_MS);
    const check = () => {
      if (errors.length) { clearTimeout(timer); reject(new Error(`discord.js failed: ${errors.join("; ")}`)); return; }
      const value = found();
      if (value !== undefined && value !== null) { clearTimeout(timer); resolve(value); } else waiters.push(check);
    };
    check();
  });
}

async function channel(id) {
  return client.channels.cache.get(id) ?? (await client.channels.fetch(id));
}

const ops = {
  async start({ token, base_url }) {
    client = new Client({
      intents: [
        GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent,
        GatewayIntentBits.GuildMessageReactions, GatewayIntentBits.GuildMessageTyping, GatewayIntentBits.DirectMessages,
        GatewayIntentBits.DirectMessageReactions, GatewayIntentBits.DirectMessageTyping,
      ],
      partials: [Partials.Channel], // DMs arrive in channels discord.js has not cached (its documented setting for DMs)
      rest: { api: `${base_url}/api` },
    });
    client.on(Events.Error, (e) => errors.push(String(e?.stack ?? e)));
    client.on(Events.ShardError, (e) => errors.push(String(e?.stack ?? e)));
    client.on(Events.MessageCreate, (m) => {
      order.push(m.id);
      if (!messages.has(m.id)) messages.set(m.id, { id: m.id, content: m.content, author_id: m.author.id, channel_id: m.channelId, member: m.member !== null });
      changed();
    });
    client.on(Events.Raw, (packet) => {
      if (packet.t === "MESSAGE_REACTION_ADD") {
        rawReactionMembers.set(`${packet.d.message_id}:${packet.d.user_id}`, packet.d.member?.user?.id ?? null);
      }
    });
    client.on(Events.MessageReactionAdd, (reaction, user) => {
      const message = reaction.message;
      const key = `${message.id}:${user.id}`;
      const member = message.guild ? message.guild.members.cache.get(user.id) : null;
      reactions.push({
        message_id: message.id, user_id: user.id, emoji: reaction.emoji.name, guild_id: message.guildId ?? null,
        member_user_id: rawReactionMembers.get(key) && member ? member.id : null,
      });
      changed();
    });
    client.on(Events.TypingStart, (t) => { typing.push({ channel_id: t.channel.id, user_id: t.user.id }); changed(); });
    client.on(Events.ShardResume, () => { resumes += 1; changed(); });
    client.on(Events.ShardReady, () => { readies += 1; changed(); });
    client.on(Events.Debug, (m) => { if (m.includes("Told to reconnect")) { reconnects += 1; changed(); } });
    const ready = new Promise((resolve) => client.once(Events.ClientReady, resolve));
    await client.login(token);
    await ready;
    return { user_id: client.user.id };
  },
  async guild({ guild_id }) {
    const guild = client.guilds.cache.get(guild_id);
    if (!guild) throw new Error("the guild is not in the cache");
    return { name: guild.name, channel_ids: [...guild.channels.cache.keys()], member_ids: [...guild.members.cache.keys()] };
  },
  wait_message: ({ id }) => until(() => messages.get(id), `MESSAGE_CREATE ${id}`),
  wait_reaction: ({ message_id, user_id }) =>
    until(() => reactions.find((r) => r.message_id === message_id && r.user_id === user_id), `reaction by ${user_id} on ${message_id}`),
  wait_typing: ({ channel_id, user_id }) =>
    until(() => typing.find((t) => t.channel_id === channel_id && t.user_id === user_id), `typing of ${user_id} in ${channel_id}`),
  wait_resumes: ({ more_than }) => until(() => (resumes > more_than ? { count: resumes } : null), "RESUMED"),
  resumes: async () => ({ count: resumes }),
  reconnects: async () => ({ count: reconnects }),
  readies: async () => ({ count: readies }),
  wait_readies: ({ more_than }) => until(() => (readies > more_than ? { count: readies } : null), "READY"),
  wait_reconnects: ({ more_than }) => until(() => (reconnects > more_than ? { count: reconnects } : null), "RECONNECT"),
  received: async () => ({ ids: [...order] }),
  async send({ channel_id, content }) {
    const m = await (await channel(channel_id)).send(content);
    return { id: m.id, content: m.content, author_id: m.author.id };
  },
  async reply({ channel_id, message_id, content }) {
    const target = await (await channel(channel_id)).messages.fetch(message_id);
    const m = await target.reply(content);
    return { id: m.id, reference_id: m.reference?.messageId ?? null };
  },
  async edit({ channel_id, message_id, content }) {
    const m = await (await channel(channel_id)).messages.edit(message_id, { content });
    return { id: m.id, content: m.content };
  },
  async delete({ channel_id, message_id }) {
    await (await channel(channel_id)).messages.delete(message_id);
    return {};
  },
  async react({ channel_id, message_id, emoji }) {
    await (await channel(channel_id)).messages.react(message_id, emoji);
    return {};
  },
  async history({ channel_id, limit }) {
    const page = await (await channel(channel_id)).messages.fetch({ limit, cache: false });
    return [...page.values()].map((m) => ({
      id: m.id, content: m.content, has_thread: m.flags.has(MessageFlags.HasThread),
      thread: m.thread ? { id: m.thread.id, name: m.thread.name, parent_id: m.thread.parentId, type: m.thread.type } : null,
    }));
  },
  async thread({ channel_id, message_id, name }) {
    const target = await (await channel(channel_id)).messages.fetch(message_id);
    const t = await target.startThread({ name });
    return { id: t.id, name: t.name, parent_id: t.parentId, type: t.type };
  },
  async dm({ user_id, content }) {
    const user = await client.users.fetch(user_id);
    const m = await user.send(content);
    return { id: m.id, channel_id: m.channelId };
  },
  async typing({ channel_id }) {
    await (await channel(channel_id)).sendTyping();
    return {};
  },
  async fetch_member({ guild_id, user_id }) {
    const m = await client.guilds.cache.get(guild_id).members.fetch({ user: user_id, force: true });
    return { user_id: m.id, joined_at: m.joinedAt ? m.joinedAt.toISOString() : null };
  },
  async chunk({ guild_id }) {
    const members = await client.guilds.cache.get(guild_id).members.fetch({ time: WAIT_MS });
    return { member_ids: [...members.keys()].sort() };
  },
  async stop() {
    await client?.destroy();
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { n, op, args } = JSON.parse(line);
  let answer;
  try {
    answer = { n, ok: true, result: (await ops[op](args)) ?? null };
  } catch (e) {
    answer = { n, ok: false, error: String(e?.stack ?? e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  if (op === "stop") break;
}
process.exit(0);
