// Interface icons as inline SVG built in the DOM (no icon font, no emoji font needed: many
// machines have none). Each is decorative: the button around it carries the label.
import { svgEl } from "../lib/dom.js";

const PATHS = {
  menu: "M3 6h18M3 12h18M3 18h18",
  members: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM1 21v-1a7 7 0 0 1 14 0v1M17 11a3 3 0 1 0 0-6M19 21v-1a5 5 0 0 0-3-4.6",
  thread: "M4 5h16v10H9l-5 4zM8 9h8M8 12h5",
  attach: "M21 12l-8.5 8.5a5 5 0 0 1-7-7L14 5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 8",
  reply: "M10 8L4 13l6 5M4 13h10a6 6 0 0 1 6 6",
  edit: "M4 20h4L19 9l-4-4L4 16zM13 7l4 4",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
  smile: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8 14a5 5 0 0 0 8 0M9 9.5v.5M15 9.5v.5",
  close: "M6 6l12 12M18 6L6 18",
  back: "M15 5l-7 7 7 7",
  mail: "M3 6h18v12H3zM3 7l9 6 9-6",
  file: "M6 3h8l4 4v14H6zM14 3v4h4",
};

export function icon(name) {
  return svgEl("svg", { viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true", focusable: "false", class: "ico" },
    svgEl("path", { d: PATHS[name] }));
}
