// The page's texts, rendered by the server into <script type="application/json" id="i18n">.
const words = JSON.parse(document.getElementById("i18n")?.textContent || "{}");

export const lang = document.documentElement.lang || "en";

/** t("key", {name: "Ana"}) -> the text with {name} replaced; the key itself when unknown. */
export function t(key, values = {}) {
  const text = words[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: "long" });
const timeFormat = new Intl.DateTimeFormat(lang, { timeStyle: "short" });
const fullFormat = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "medium" });
const numberFormat = new Intl.NumberFormat(lang);

export const formatDate = (d) => dateFormat.format(d);
export const formatTime = (d) => timeFormat.format(d);
export const formatFull = (d) => fullFormat.format(d);
export const formatNumber = (n) => numberFormat.format(n);
