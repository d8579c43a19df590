// Channels: messages per channel over time (the busiest as lines, every channel in a table).

import { api } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { lineChart, sparkline } from "../lib/charts.js";
import { clock, errorText, keepOpen, poll, stamp, table } from "./util.js";

const WINDOWS = { "1h": [60, 5], "6h": [360, 15], "24h": [1440, 60], "7d": [10080, 360] };
const LINES = 6;

export async function mount(el, ctx) {
  if (!ctx.guildId) { replace(el, h("h1", {}, t("adm_nav_channels")), h("p", {}, t("adm_no_society"))); return null; }
  let windowName = "6h";
  const status = h("p", { class: "poll-status muted", role: "status" });
  const body = h("div");
  const select = h("select", { id: "channel-window", onchange: (e) => { windowName = e.target.value; load().catch(() => {}); } },
    Object.keys(WINDOWS).map((k) => h("option", { value: k, selected: k === windowName }, t(`adm_window_${k}`))));
  replace(el, h("h1", {}, t("adm_nav_channels")),
    h("p", {}, h("label", { for: "channel-window", class: "inline-label" }, t("adm_window")), " ", select), status, body);

  async function load() {
    const [minutes, bucket] = WINDOWS[windowName];
    const data = await api("GET", "/townsquare/dashboard/channels/activity", undefined,
      { query: { guild_id: ctx.guildId, minutes, bucket_minutes: bucket } });
    const labels = data.buckets.map((b) => (minutes > 1440 ? stamp(b) : clock(b)));
    const busiest = data.channels.filter((c) => c.total > 0).slice(0, LINES);
    status.textContent = t("adm_updated", { time: new Date().toLocaleTimeString() });
    keepOpen(body, () => replace(body,
      busiest.length
        ? lineChart({ title: t("adm_chart_channels"), desc: t("adm_chart_channels_desc", { bucket: data.bucket_minutes }), labels,
          xHeader: t("adm_time"), tableCaption: t("adm_data_table"), yLabel: t("adm_messages"),
          series: busiest.map((c) => ({ name: `#${c.name}`, values: c.counts })) })
        : h("p", { class: "muted" }, t("adm_no_activity")),
      h("div", { class: "table-wrap" }, table([t("adm_channel"), t("adm_messages"), t("adm_trend")],
        data.channels.map((c) => h("tr", {}, h("th", { scope: "row" }, `#${c.name}`), h("td", { class: "num" }, formatNumber(c.total)),
          h("td", {}, sparkline(c.counts, { label: t("adm_trend_of", { name: c.name }) })))), { caption: t("adm_channels_table") }))));
  }
  return poll(load, 15000, (error) => { status.textContent = errorText(error); });
}
