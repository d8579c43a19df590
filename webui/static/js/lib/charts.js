// Small SVG charts of our own: line, bar and sparkline. Each chart is a <figure> whose SVG has
// role="img" with a <title> and a <desc> (what it shows, in words), followed by the same data
// as a table for screen readers and for anyone who would rather read numbers.
// Colours come from CSS classes (.series-0 ... .series-7), so light and dark themes apply.

import { h, svgEl as s } from "./dom.js";

let serial = 0;

/** A "nice" upper bound and tick step for 0..max (1, 2, 5 x 10^n). */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((v) => v >= raw);
  return { top: step * Math.ceil(max / step), step };
}

const fmtDefault = (v) => (v === null || v === undefined ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(1));

function frame({ title, desc, width, height }) {
  const id = `chart-${++serial}`;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, class: "chart-svg",
    preserveAspectRatio: "xMidYMid meet" },
  s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc || ""));
  return svg;
}

function dataTable(caption, header, rows) {
  return h("details", { class: "chart-data" },
    h("summary", {}, caption),
    h("table", { class: "data" },
      h("thead", {}, h("tr", {}, header.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c))))))));
}

function axes(svg, { x0, y0, x1, y1, top, step, format, yLabel }) {
  const g = s("g", { class: "axis", "aria-hidden": "true" });
  for (let v = 0; v <= top + 1e-9; v += step) {
    const y = y1 - ((y1 - y0) * v) / top;
    g.append(s("line", { x1: x0, x2: x1, y1: y, y2: y, class: v === 0 ? "axis-line" : "grid-line" }));
    g.append(s("text", { x: x0 - 6, y: y + 4, "text-anchor": "end", class: "tick" }, format(v)));
  }
  if (yLabel) g.append(s("text", { x: x0, y: y0 - 10, class: "axis-label" }, yLabel));
  svg.append(g);
}

function xTicks(svg, labels, xOf, y, every) {
  const g = s("g", { class: "axis", "aria-hidden": "true" });
  labels.forEach((label, i) => {
    if (i % every !== 0 && i !== labels.length - 1) return;
    g.append(s("text", { x: xOf(i), y, "text-anchor": "middle", class: "tick" }, label));
  });
  svg.append(g);
}

/**
 * lineChart({title, desc, labels: [..x labels], series: [{name, values: [number|null]}], yLabel, format, tableCaption})
 * Missing values (null) break the line.
 */
export function lineChart({ title, desc, labels, series, yLabel = "", format = fmtDefault, tableCaption = "Data", xHeader = "" }) {
  const width = 640, height = 240, x0 = 52, y0 = 28, x1 = width - 12, y1 = height - 30;
  const max = Math.max(0, ...series.flatMap((sr) => sr.values.filter((v) => v !== null && v !== undefined)));
  const { top, step } = niceScale(max);
  const svg = frame({ title, desc, width, height });
  axes(svg, { x0, y0, x1, y1, top, step, format, yLabel });
  const n = labels.length;
  const xOf = (i) => (n <= 1 ? (x0 + x1) / 2 : x0 + ((x1 - x0) * i) / (n - 1));
  const yOf = (v) => y1 - ((y1 - y0) * v) / top;
  xTicks(svg, labels, xOf, height - 10, Math.max(1, Math.ceil(n / 6)));
  series.forEach((sr, k) => {
    const g = s("g", { class: `series series-${k % 8}` });
    let d = "", pen = false;
    sr.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)} `;
      pen = true;
    });
    g.append(s("path", { d: d.trim() || "M0,0", class: "line" }));
    sr.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      g.append(s("circle", { cx: xOf(i).toFixed(1), cy: yOf(v).toFixed(1), r: 2.5, class: "dot" },
        s("title", {}, `${sr.name}, ${labels[i]}: ${format(v)}`)));
    });
    svg.append(g);
  });
  const legend = series.length > 1 ? h("ul", { class: "legend" },
    series.map((sr, k) => h("li", {}, h("span", { class: `swatch series-${k % 8}`, "aria-hidden": "true" }), sr.name))) : null;
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg, legend,
    dataTable(tableCaption, [xHeader, ...series.map((sr) => sr.name)], labels.map((l, i) => [l, ...series.map((sr) => format(sr.values[i]))])));
}

/**
 * barChart({title, desc, labels, values, yLabel, format, min, max, tableCaption, classes})
 * Values may be negative (min < 0 draws the zero line in the middle, e.g. mood valence -1..1).
 */
export function barChart({ title, desc, labels, values, yLabel = "", format = fmtDefault, min = 0, max = null, tableCaption = "Data",
  xHeader = "", valueHeader = "", classes = null }) {
  const width = 640, height = 240, x0 = 52, y0 = 28, x1 = width - 12, y1 = height - 48;
  const svg = frame({ title, desc, width, height });
  let top, step, bottom = min;
  if (max === null) ({ top, step } = niceScale(Math.max(0, ...values)));
  else { top = max; step = (max - min) / 4; }
  const span = top - bottom || 1;
  const yOf = (v) => y1 - ((y1 - y0) * (v - bottom)) / span;
  const g = s("g", { class: "axis", "aria-hidden": "true" });
  for (let v = bottom; v <= top + 1e-9; v += step) {
    g.append(s("line", { x1: x0, x2: x1, y1: yOf(v), y2: yOf(v), class: Math.abs(v) < 1e-9 ? "axis-line" : "grid-line" }));
    g.append(s("text", { x: x0 - 6, y: yOf(v) + 4, "text-anchor": "end", class: "tick" }, format(v)));
  }
  if (yLabel) g.append(s("text", { x: x0, y: y0 - 10, class: "axis-label" }, yLabel));
  svg.append(g);
  const n = Math.max(1, values.length);
  const slot = (x1 - x0) / n;
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const zero = yOf(Math.max(bottom, Math.min(0, top)));
  values.forEach((v, i) => {
    const x = x0 + slot * i + (slot - barW) / 2;
    const y = yOf(v ?? 0);
    const cls = classes ? classes[i] : `series-${(v ?? 0) < 0 ? 1 : 0}`;
    svg.append(s("rect", { x: x.toFixed(1), y: Math.min(y, zero).toFixed(1), width: barW.toFixed(1),
      height: Math.max(1, Math.abs(zero - y)).toFixed(1), class: `bar ${cls}` }, s("title", {}, `${labels[i]}: ${format(v)}`)));
  });
  xTicks(svg, labels.map((l) => (l.length > 12 ? `${l.slice(0, 11)}…` : l)), (i) => x0 + slot * i + slot / 2, height - 26,
    Math.max(1, Math.ceil(n / 10)));
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg,
    dataTable(tableCaption, [xHeader, valueHeader || title], labels.map((l, i) => [l, format(values[i])])));
}

/** sparkline(values, {label}) -> a small inline SVG (role img, labelled), no axes. */
export function sparkline(values, { label = "", width = 96, height = 24 } = {}) {
  const clean = values.map((v) => (v === null || v === undefined ? null : Number(v)));
  const present = clean.filter((v) => v !== null);
  const max = Math.max(...present, 0), min = Math.min(...present, 0);
  const span = max - min || 1;
  const n = clean.length;
  const xOf = (i) => (n <= 1 ? width / 2 : (width - 2) * (i / (n - 1)) + 1);
  const yOf = (v) => height - 2 - ((height - 4) * (v - min)) / span;
  let d = "";
  clean.forEach((v, i) => { if (v !== null) d += `${d ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)} `; });
  return s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label, class: "sparkline" },
    s("title", {}, label), s("path", { d: d.trim() || `M0,${height - 2} L${width},${height - 2}`, class: "line" }));
}
