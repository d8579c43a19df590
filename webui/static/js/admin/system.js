// System: processes, disk, event stream and queues; the log viewer; the configuration panel;
// backups; the audit log. Parts whose API is missing on this server say so and stay usable.

import { api, blobUrl } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { t, formatNumber } from "../lib/i18n.js";
import { act, bytes, errorText, isMissing, loadOrUnavailable, num, poll, section, stamp, table } from "./util.js";

export async function mount(el, ctx) {
  const procBox = h("div"), logBox = h("div"), configBox = h("div"), backupBox = h("div"), auditBox = h("div");
  const tabs = [["adm_sys_processes", procBox], ["adm_sys_logs", logBox], ["adm_sys_config", configBox],
    ["adm_sys_backups", backupBox], ["adm_sys_audit", auditBox]];
  replace(el, h("h1", {}, t("adm_nav_system")),
    h("nav", { class: "jump", "aria-label": t("adm_on_this_page") }, h("ul", {}, tabs.map(([key], i) =>
      h("li", {}, h("a", { href: `#sys-${i}` }, t(key)))))),
    ...tabs.map(([key, box], i) => h("section", { class: "card panel", id: `sys-${i}`, "aria-labelledby": `sys-h-${i}` },
      h("h2", { id: `sys-h-${i}` }, t(key)), box)));
  const stop = poll(() => loadSystem(procBox), 10000, (error) => replace(procBox, h("p", { class: "error" }, errorText(error))));
  logViewer(logBox);
  loadConfig(configBox, ctx).catch((error) => replace(configBox, h("p", { class: "error" }, errorText(error))));
  backups(backupBox).catch((error) => replace(backupBox, h("p", { class: "error" }, errorText(error))));
  auditLog(auditBox, ctx);
  return stop;
}

// --- processes, disk, stream, queues ---

async function loadSystem(box) {
  const data = await loadOrUnavailable(box, "/townsquare/system", t("adm_sys_processes"));
  if (data === null) return;
  const procs = data.processes || [];
  const stream = data.stream || {};
  const queues = data.queues || {};
  const ready = data.ready || {};
  const checks = ready.checks || ready;
  replace(box,
    h("div", { class: "table-wrap" }, table([t("adm_process"), "PID", "CPU", t("adm_memory_rss"), t("adm_disk_read"), t("adm_disk_written"), t("adm_threads"), t("adm_files")],
      procs.map((p) => h("tr", {}, h("th", { scope: "row" }, p.role, p.this_process ? h("span", { class: "muted" }, ` (${t("adm_this")})`) : null),
        h("td", { class: "num" }, String(p.pid)), h("td", { class: "num" }, `${num(p.cpu_percent, 1)} %`),
        h("td", { class: "num" }, bytes(p.rss_bytes)),
        h("td", { class: "num" }, p.disk_read_bytes == null ? "–" : bytes(p.disk_read_bytes)),
        h("td", { class: "num" }, p.disk_write_bytes == null ? "–" : bytes(p.disk_write_bytes)),
        h("td", { class: "num" }, p.threads ?? "–"), h("td", { class: "num" }, p.open_fds ?? "–"))),
      { caption: t("adm_processes_caption") })),
    data.disk ? h("p", {}, t("adm_disk_line", { used: bytes(data.disk.used_bytes), total: bytes(data.disk.total_bytes),
      percent: num(data.disk.used_percent, 1), data: bytes(data.disk.data_bytes), path: data.disk.path })) : null,
    stream.error ? h("p", { class: "error" }, `${t("adm_stream")}: ${stream.error}`) : h("div", {},
      h("p", {}, t("adm_stream_line", { length: formatNumber(stream.length ?? 0), added: formatNumber(stream.entries_added ?? 0) })),
      (stream.groups || []).length ? h("div", { class: "table-wrap" }, table([t("adm_group"), t("adm_consumers"), t("adm_pending"), t("adm_lag")],
        stream.groups.map((g) => h("tr", {}, h("th", { scope: "row" }, g.name), h("td", { class: "num" }, String(g.consumers)),
          h("td", { class: "num" }, String(g.pending)), h("td", { class: "num" }, g.lag === null ? "?" : String(g.lag)))),
        { caption: t("adm_stream") })) : null),
    queues.error ? h("p", { class: "error" }, `${t("adm_queues")}: ${queues.error}`) : h("div", { class: "table-wrap" },
      table([t("adm_queue"), t("adm_state"), t("adm_depth")], Object.entries(queues).flatMap(([name, states]) =>
        Object.entries(states || {}).map(([state, n]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, state),
          h("td", { class: "num" }, n === null ? "?" : String(n))))), { caption: t("adm_queues") })),
    typeof checks === "object" ? h("ul", { class: "checks" }, Object.entries(checks).map(([name, value]) => {
      // "embedded" (a service run in-process) is as good as "ok"; a failed optional check is not required
      const status = typeof value === "string" ? value : value?.status;
      const ok = status === "ok" || status === "embedded";
      const bad = !ok && (typeof value !== "object" || value?.required !== false);
      return h("li", { class: ok ? "ok" : bad ? "bad" : "warn" }, `${name}: ${typeof value === "string" ? value : value?.status || JSON.stringify(value)}`);
    })) : null,
    data.gateway_sessions !== undefined ? h("p", {}, t("adm_gateway_sessions", { count: formatNumber(data.gateway_sessions) })) : null);
}

// --- logs ---

function logViewer(box) {
  const form = h("form", { class: "log-filters" },
    h("label", {}, t("adm_log_level"), h("select", { name: "level" },
      h("option", { value: "" }, t("adm_any")), ["debug", "info", "warning", "error", "critical"].map((l) => h("option", { value: l, selected: l === "warning" }, l)))),
    h("label", {}, t("adm_log_logger"), h("input", { name: "logger", placeholder: "townsquare.worker", pattern: "[A-Za-z0-9_.\\-]+", maxlength: 100 })),
    h("label", {}, t("adm_log_text"), h("input", { name: "q", type: "search", maxlength: 200 })),
    h("label", {}, t("adm_log_since"), h("input", { name: "since", type: "datetime-local", step: 1 })),
    h("label", {}, t("adm_log_until"), h("input", { name: "until", type: "datetime-local", step: 1 })),
    h("button", { type: "submit", class: "primary" }, t("adm_apply")));
  const info = h("p", { class: "muted", role: "status" });
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, t("adm_load_older"));
  let cursor = null;
  const query = () => {
    const d = Object.fromEntries(new FormData(form));
    const iso = (v) => (v ? new Date(v).toISOString() : undefined);
    return { level: d.level || undefined, logger: d.logger || undefined, q: d.q || undefined, since: iso(d.since), until: iso(d.until), limit: 100 };
  };
  async function load(append) {
    try {
      const data = await api("GET", "/townsquare/dashboard/logs", undefined, { query: { ...query(), before: append ? cursor : undefined } });
      if (!append) tbody.replaceChildren();
      for (const r of data.records) {
        tbody.append(h("tr", { class: `log-${r.level}` }, h("td", {}, stamp(r.ts)), h("td", {}, h("span", { class: `level level-${r.level}` }, r.level)),
          h("td", {}, r.logger), h("td", {}, r.process), h("td", { class: "log-msg" }, r.msg,
            r.fields ? h("div", { class: "muted small" }, Object.entries(r.fields).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")) : null,
            r.exc ? h("details", {}, h("summary", {}, t("adm_traceback")), h("pre", {}, r.exc)) : null)));
      }
      cursor = data.next_before;
      more.hidden = !cursor;
      info.textContent = t("adm_log_info", { shown: formatNumber(tbody.children.length), stored: formatNumber(data.stored) });
    } catch (error) {
      info.textContent = errorText(error);
    }
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  replace(box, form, info, h("div", { class: "table-wrap" }, table([t("adm_time"), t("adm_log_level"), t("adm_log_logger"), t("adm_process"), t("adm_message")],
    tbody, { caption: t("adm_sys_logs"), cls: "data logs" })), more);
  load(false);
}

// --- configuration ---

async function loadConfig(box, ctx) {
  const data = await api("GET", "/townsquare/dashboard/config");
  const groups = {};
  for (const s of data.settings) (groups[s.group] ||= []).push(s);
  const show = (v) => (v === null || v === undefined || v === "" ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const routing = data.routing || {};
  replace(box,
    h("p", { class: "muted" }, t("adm_config_note")),
    h("h3", {}, t("adm_config_societies")),
    ...data.societies.map((s) => societyForm(s, ctx)),
    h("h3", {}, t("adm_config_routing")),
    routing.error ? h("p", { class: "error" }, routing.error) : h("div", {},
      h("p", { class: "muted" }, routing.file ? t("adm_routing_file", { file: routing.file }) : t("adm_routing_default")),
      h("div", { class: "table-wrap" }, table([t("adm_backend"), t("adm_kind"), t("adm_host"), t("adm_model"), t("adm_timeout")],
        Object.entries(routing.backends || {}).map(([name, b]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, b.kind),
          h("td", {}, b.host), h("td", {}, b.model), h("td", { class: "num" }, `${b.timeout_seconds} s`))), { caption: t("adm_config_routing") })),
      h("ul", {}, h("li", {}, `${t("adm_route_default")}: ${(routing.routes?.default || []).join(" → ")}`),
        ...Object.entries(routing.routes?.tasks || {}).map(([k, v]) => h("li", {}, `${t("adm_route_task", { task: k })}: ${v.join(" → ")}`)),
        ...Object.entries(routing.routes?.agents || {}).map(([k, v]) => h("li", {}, `${t("adm_route_agent", { agent: k })}: ${v.join(" → ")}`)),
        routing.breaker ? h("li", {}, t("adm_breaker", { failures: routing.breaker.failure_threshold, seconds: routing.breaker.recovery_seconds })) : null)),
    ...Object.entries(groups).map(([group, items]) => h("details", { class: "config-group", open: group === "scheduler" },
      h("summary", {}, t(`adm_group_${group}`)),
      h("div", { class: "table-wrap" }, table([t("adm_setting"), t("adm_env"), t("adm_value")], items.map((s) => h("tr", {},
        h("th", { scope: "row" }, s.name), h("td", {}, h("code", {}, s.env)),
        h("td", {}, h("code", {}, show(s.value)), s.secret ? h("span", { class: "badge" }, t("adm_secret")) : null))))))));
}

function societyForm(society, ctx) {
  const area = h("textarea", { name: "topics", rows: 4 }, (society.revival_topics || []).join("\n"));
  const form = h("form", { class: "stack society-form" },
    h("h4", {}, society.name, society.paused ? h("span", { class: "status status-paused" }, ` ${t("adm_status_paused")}`) : null),
    h("label", {}, t("adm_revival_topics"), area),
    h("button", { type: "submit" }, t("save")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const topics = area.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const done = await act(form.querySelector("button[type=submit]"),
      () => api("PATCH", `/townsquare/dashboard/societies/${society.guild_id}`, { revival_topics: topics }), t("adm_topics_saved"));
    if (done && society.guild_id === ctx.guildId) await ctx.reloadSocieties();
  });
  return form;
}

// --- backups ---

async function backups(box) {
  const list = await loadOrUnavailable(box, "/townsquare/backups", t("adm_sys_backups"));
  if (list === null) return;
  const reload = () => backups(box).catch((error) => replace(box, h("p", { class: "error" }, errorText(error))));
  const create = h("button", { type: "button", class: "primary", onclick: (e) => act(e.currentTarget, async () => {
    await api("POST", "/townsquare/backups", {});
    await reload();
  }, t("adm_backup_created")) }, t("adm_backup_create"));
  replace(box, h("p", {}, create),
    list.length ? h("div", { class: "table-wrap" }, table([t("adm_backup_name"), t("adm_kind"), t("adm_created"), t("adm_size"), t("adm_actions")],
      list.map((b) => h("tr", { class: b.damaged ? "row-bad" : "" },
        h("th", { scope: "row" }, h("code", {}, b.name), b.damaged ? h("span", { class: "badge mention" }, t("adm_damaged")) : null),
        h("td", {}, b.kind), h("td", {}, stamp(b.created_at)), h("td", { class: "num" }, bytes(b.size)),
        h("td", {}, h("span", { class: "buttons" },
          h("button", { type: "button", "aria-label": t("adm_download_named", { name: b.name }), onclick: (e) => act(e.currentTarget, async () => {
            const url = await blobUrl(`/api/v10/townsquare/backups/${encodeURIComponent(b.name)}`);
            const link = h("a", { href: url, download: b.name, hidden: true });
            document.body.append(link);
            link.click();
            link.remove();
            setTimeout(() => URL.revokeObjectURL(url), 10_000);
          }) }, t("adm_download")),
          h("button", { type: "button", "aria-label": t("adm_restore_named", { name: b.name }), onclick: () => restoreDialog(b, reload) }, t("adm_restore")),
          h("button", { type: "button", class: "danger", "aria-label": t("adm_delete_named", { name: b.name }), onclick: (e) => {
            if (!confirm(t("adm_backup_delete_confirm", { name: b.name }))) return;
            act(e.currentTarget, async () => { await api("DELETE", `/townsquare/backups/${encodeURIComponent(b.name)}`); await reload(); }, t("adm_backup_deleted"));
          } }, t("delete"))))))))
      : h("p", { class: "muted" }, t("adm_no_backups")));
}

function restoreDialog(backup, after) {
  const name = h("input", { name: "confirm", required: true, autocomplete: "off" });
  const replaceBox = h("input", { type: "checkbox", name: "replace" });
  const dialog = h("dialog", { class: "card", "aria-labelledby": "restore-title" },
    h("form", { method: "dialog", class: "stack" },
      h("h2", { id: "restore-title" }, t("adm_restore_title", { name: backup.name })),
      h("p", {}, t("adm_restore_warning")),
      h("label", {}, t("adm_restore_type_name", { name: backup.name }), name),
      h("label", { class: "check" }, replaceBox, ` ${t("adm_restore_replace")}`),
      h("div", { class: "row" },
        h("button", { type: "submit", value: "cancel" }, t("cancel")),
        h("button", { type: "submit", value: "restore", class: "danger" }, t("adm_restore")))));
  document.body.append(dialog);
  dialog.addEventListener("close", async () => {
    const go = dialog.returnValue === "restore";
    dialog.remove();
    if (!go) return;
    await act(null, async () => {
      await api("POST", `/townsquare/backups/${encodeURIComponent(backup.name)}/restore`, { confirm: name.value, replace: replaceBox.checked });
      await after();
    }, t("adm_restored"));
  });
  dialog.showModal();
  name.focus();
}

// --- the audit log ---

function auditLog(box, ctx) {
  const scope = h("select", { name: "scope" },
    h("option", { value: "society" }, t("adm_audit_society")), h("option", { value: "platform" }, t("adm_audit_platform")),
    h("option", { value: "all" }, t("adm_audit_all")));
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, t("adm_load_older"));
  const info = h("p", { class: "muted", role: "status" });
  let before = null;
  async function load(append) {
    const which = scope.value;
    try {
      const data = await api("GET", "/townsquare/security-log", undefined, { query: {
        scope: which === "platform" ? "platform" : "all", guild_id: which === "society" ? ctx.guildId : undefined,
        before: append ? before : undefined, limit: 50 } });
      const users = new Map(data.users.map((u) => [u.id, u.global_name || u.username]));
      if (!append) tbody.replaceChildren();
      for (const e of data.entries) {
        tbody.append(h("tr", {}, h("td", {}, stamp(e.created_at)), h("td", {}, users.get(e.user_id) || e.user_id || t("adm_runtime")),
          h("td", {}, h("code", {}, e.action || String(e.action_type))), h("td", {}, e.target_id || "–"),
          h("td", {}, (e.changes || []).map((c) => `${c.key}: ${JSON.stringify(c.new_value)}`).join("; ") || (e.options ? JSON.stringify(e.options) : ""),
            e.reason ? h("div", { class: "muted small" }, e.reason) : null)));
      }
      before = data.entries.length ? data.entries[data.entries.length - 1].id : null;
      more.hidden = data.entries.length < 50;
      info.textContent = t("adm_audit_shown", { count: formatNumber(tbody.children.length) });
    } catch (error) {
      info.textContent = isMissing(error) ? t("adm_unavailable", { what: t("adm_sys_audit") }) : errorText(error);
    }
  }
  scope.addEventListener("change", () => load(false));
  more.addEventListener("click", () => load(true));
  replace(box, h("label", { class: "inline-label" }, t("adm_audit_scope"), " ", scope), info,
    h("div", { class: "table-wrap" }, table([t("adm_time"), t("adm_actor"), t("adm_action"), t("adm_target"), t("adm_changes")], tbody,
      { caption: t("adm_sys_audit") })), more);
  load(false);
}
