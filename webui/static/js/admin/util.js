// Shared bits of the dashboard's views: polling with backoff, toasts, small formatters.

import { ApiError, api, token } from "../lib/api.js";
import { h, $, replace } from "../lib/dom.js";
import { t, formatNumber, lang } from "../lib/i18n.js";

/**
 * poll(fn, every) runs fn now and then every `every` ms while the page is visible; a failure
 * doubles the wait (up to a minute) and calls onError; the next success resets it.
 * Returns stop(). The dashboard refreshes by polling the REST API (the gateway carries no
 * dashboard figures).
 */
export function poll(fn, every = 5000, onError = null) {
  let timer = null, stopped = false, wait = every;
  async function tick() {
    timer = null;
    if (stopped) return;
    if (document.hidden) { timer = setTimeout(tick, every); return; }
    try {
      await fn();
      wait = every;
    } catch (error) {
      wait = Math.min(60_000, wait * 2);
      if (onError) onError(error);
    }
    if (!stopped) timer = setTimeout(tick, wait);
  }
  tick();
  return () => { stopped = true; if (timer) clearTimeout(timer); };
}

export function toast(message, { error = false } = {}) {
  const region = $("#admin-toasts");
  if (!region) return;
  const el = h("div", { class: `toast${error ? " toast-error" : ""}` }, message);
  region.append(el);
  setTimeout(() => el.remove(), 4000);
}

export function errorText(error) {
  if (error instanceof ApiError) {
    const details = [];
    const walk = (node, path) => {
      if (!node || typeof node !== "object") return;
      for (const [k, v] of Object.entries(node)) {
        if (k === "_errors" && Array.isArray(v)) details.push(`${path}: ${v.map((e) => e.message).join(", ")}`);
        else walk(v, path ? `${path}.${k}` : k);
      }
    };
    walk(error.errors, "");
    return [error.message, ...details].join(" · ");
  }
  return t("error_generic", { message: String(error?.message || error) });
}

/** Runs an action from a button: disabled while it runs, a toast on success or failure. */
export async function act(button, fn, done = null) {
  if (button) button.disabled = true;
  try {
    const result = await fn();
    if (done) toast(done);
    return result;
  } catch (error) {
    toast(errorText(error), { error: true });
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Saves what an authenticated GET of `url` returns as a file (its Content-Disposition name, else `fallback`). */
export async function saveDownload(url, fallback) {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token.get()}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const name = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || fallback;
  const href = URL.createObjectURL(await response.blob());
  const link = h("a", { href, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

export const isMissing = (error) => error instanceof ApiError && (error.status === 404 || error.status === 405);

const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });

export function ago(iso) {
  if (!iso) return "–";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(Math.round(seconds), "second");
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86400), "day");
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${formatNumber(Math.round(v * 10) / 10)} ${units[i]}`;
}

export const num = (v, digits = 1) => (v === null || v === undefined ? "–" : formatNumber(Math.round(v * 10 ** digits) / 10 ** digits));
export const pct = (v) => (v === null || v === undefined ? "–" : `${formatNumber(Math.round(v * 1000) / 10)} %`);
export const clock = (iso) => new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
export const stamp = (iso) => (iso ? new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "medium" }).format(new Date(iso)) : "–");

/** A status badge (idle, thinking, speaking, paused, muted, resting). */
export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, t(`adm_status_${status}`));
}

/** Why a failed turn failed, in words: the worker's reason, or (for turns recorded before
 * reasons were) what its outcome says. */
export function failureReason(failure) {
  if (failure.error) return failure.error;
  const key = `adm_failure_${failure.outcome}`;
  const known = t(key);
  return known === key ? t("adm_failure_other", { outcome: failure.outcome }) : known;
}

/** A quality-gate reason (wrong_voice, off_topic, ...) in words; an unknown one as it is. */
export function gateReasonText(reason) {
  const key = `adm_gate_${reason}`;
  const words = t(key);
  return words === key ? reason : words;
}

/** An LLM call's error as shown: a gate rejection ("gate:<reason>") in words, anything else as it is. */
export function callErrorText(error) {
  return error && error.startsWith("gate:") ? t("adm_gate_rejected_because", { reason: gateReasonText(error.slice(5)) }) : error;
}

/** An agent's last failure for a card or a page: "Last failure, 3 minutes ago: <why>", or null. */
export function lastFailure(failure, { cls = "last-failure" } = {}) {
  if (!failure) return null;
  return h("div", { class: cls, "data-turn-id": failure.id },
    h("span", { class: "last-failure-when" }, t("adm_last_failure_when", { when: ago(failure.created_at) })), " ",
    h("span", { class: "last-failure-why" }, failureReason(failure)));
}

export function section(title, ...children) {
  const id = `sec-${title.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
  return h("section", { class: "card panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function table(headers, rows, { caption = null, cls = "data" } = {}) {
  return h("table", { class: cls },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

export function unavailable(what) {
  return h("p", { class: "unavailable", role: "status" }, t("adm_unavailable", { what }));
}

/** GETs `path` for a panel; when the server has no such route (an older or trimmed
 * deployment), shows `what` as unavailable in `box` and returns null. Other errors throw. */
export async function loadOrUnavailable(box, path, what) {
  try {
    return await api("GET", path);
  } catch (error) {
    if (isMissing(error)) { replace(box, unavailable(what)); return null; }
    throw error;
  }
}

/** Keeps open <details> open across a re-render of `el` (by their position). */
export function keepOpen(el, render) {
  const open = [...el.querySelectorAll("details")].map((d) => d.open);
  render();
  [...el.querySelectorAll("details")].forEach((d, i) => { if (open[i]) d.open = true; });
}
