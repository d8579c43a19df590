// World: the society's simulated day, the events on now and coming up, the news out so far and
// the next items due, and where each agent is (read-only; refreshed every 15 s).

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { errorText, keepOpen, poll, section, table } from "./util.js";

export async function mount(el, ctx) {
  if (!ctx.guildId) { replace(el, h("h1", {}, t("adm_nav_world")), h("p", {}, t("adm_no_society"))); return null; }
  const status = h("p", { class: "poll-status muted", role: "status" });
  const body = h("div", { class: "world" });
  replace(el, h("h1", {}, t("adm_nav_world")), status, body);

  const when = (e) => t("adm_world_when", { day: e.day, start: e.start, end: e.end });
  const events = (list, empty) => (list.length
    ? table([t("adm_world_event"), t("adm_world_place"), t("adm_world_time")],
      list.map((e) => h("tr", {}, h("th", { scope: "row" }, e.title), h("td", {}, e.place), h("td", {}, when(e)))))
    : h("p", { class: "muted" }, empty));

  async function load() {
    const w = await api("GET", `/townsquare/societies/${ctx.guildId}/world`);
    status.textContent = t("adm_updated", { time: new Date().toLocaleTimeString() });
    if (!w.world) { replace(body, h("p", { class: "muted" }, t("adm_world_none"))); return; }
    keepOpen(body, () => replace(body,
      h("p", { class: "world-time" }, t("adm_world_now", { day: w.time.day, weekday: t(`adm_weekday_${w.time.weekday}`), time: w.time.time })),
      section(t("adm_world_on_now"), events(w.now, t("adm_world_nothing_on"))),
      section(t("adm_world_upcoming"), events(w.upcoming, t("adm_world_nothing_upcoming"))),
      section(t("adm_world_news", { source: w.news_source }),
        w.news.length ? h("ul", { class: "world-news" }, w.news.map((n) => h("li", {}, h("span", { class: "muted" }, `#${n.channel} `), n.content)))
          : h("p", { class: "muted" }, t("adm_world_no_news")),
        w.scheduled.length ? h("details", {}, h("summary", {}, t("adm_world_scheduled", { n: w.scheduled.length })),
          h("ul", {}, w.scheduled.map((n) => h("li", {}, t("adm_world_when_news", { day: n.day, time: n.time, channel: n.channel }), " ",
            n.title || n.id)))) : null),
      section(t("adm_world_whereabouts"), h("div", { class: "table-wrap" }, table([t("adm_agent"), t("adm_world_place"), t("adm_world_doing")],
        w.agents.map((a) => h("tr", {}, h("th", { scope: "row" }, a.name), h("td", {}, a.place || "–"), h("td", {}, a.doing || "–"))))))));
  }
  return poll(load, 15000, (error) => { status.textContent = errorText(error); });
}
