// Small shared widgets: toasts, a confirmation dialog, the emoji picker popover.
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { findEmoji } from "../lib/emoji.js";

let toastTimer = null;

/** A short notice, read out by screen readers. */
export function toast(text) {
  let box = document.getElementById("chat-toast");
  if (!box) {
    box = h("div", { id: "chat-toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

/** A modal yes/no question (a real <dialog>: focus is trapped and Escape cancels). Resolves true or false. */
export function confirmDialog(text, okLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-label": text },
      h("form", { method: "dialog", class: "stack" },
        h("p", {}, text),
        h("div", { class: "row end" },
          h("button", { value: "cancel", type: "submit" }, t("cancel")),
          h("button", { value: "ok", type: "submit", class: "primary danger-fill" }, okLabel))));
    const back = document.activeElement;
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
      back?.focus?.();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

let openPicker = null;

/** The emoji picker next to `anchor`; onPick(emoji) then closes. Escape or a click elsewhere closes it. */
export function emojiPicker(anchor, onPick) {
  openPicker?.close();
  const grid = h("div", { class: "emoji-grid" });
  const filter = h("input", { type: "search", class: "emoji-filter", placeholder: t("chat_emoji_filter"), "aria-label": t("chat_emoji_filter") });
  const pop = h("div", { class: "emoji-picker", role: "dialog", "aria-label": t("chat_emoji_picker") }, filter, grid);
  const fill = () => {
    grid.replaceChildren(...findEmoji(filter.value).map(([emoji, name]) => h("button", {
      type: "button", class: "emoji", title: name, "aria-label": name, onclick: () => { close(); onPick(emoji); },
    }, emoji)));
  };
  const outside = (e) => { if (!pop.contains(e.target) && e.target !== anchor) close(); };
  const keys = (e) => { if (e.key === "Escape") { e.preventDefault(); close(); anchor.focus(); } };
  function close() {
    pop.remove();
    document.removeEventListener("pointerdown", outside, true);
    document.removeEventListener("keydown", keys, true);
    if (openPicker?.pop === pop) openPicker = null;
  }
  filter.addEventListener("input", fill);
  filter.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); grid.querySelector("button")?.click(); }
  });
  fill();
  document.body.append(pop);
  const box = anchor.getBoundingClientRect();
  const top = Math.min(window.innerHeight - pop.offsetHeight - 8, box.bottom + 4);
  const left = Math.max(8, Math.min(window.innerWidth - pop.offsetWidth - 8, box.right - pop.offsetWidth));
  pop.style.top = `${Math.max(8, top)}px`;
  pop.style.left = `${left}px`;
  document.addEventListener("pointerdown", outside, true);
  document.addEventListener("keydown", keys, true);
  openPicker = { pop, close };
  filter.focus();
}

/** A modal text question; resolves the trimmed answer, or null when cancelled. */
export function promptDialog(question, initial = "", okLabel = t("save")) {
  return new Promise((resolve) => {
    const input = h("input", { name: "answer", required: true, maxlength: "100" });
    input.value = initial;
    const dialog = h("dialog", { class: "confirm", "aria-label": question },
      h("form", { method: "dialog", class: "stack" },
        h("label", {}, question, input),
        h("div", { class: "row end" },
          h("button", { value: "cancel", type: "submit", formnovalidate: true }, t("cancel")),
          h("button", { value: "ok", type: "submit", class: "primary" }, okLabel))));
    const back = document.activeElement;
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
      dialog.remove();
      back?.focus?.();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  });
}
