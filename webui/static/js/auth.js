// The login / register page.
import { api, token, ApiError } from "./lib/api.js";
import { t } from "./lib/i18n.js";
import { $ } from "./lib/dom.js";

const forms = { login: $("#form-login"), register: $("#form-register") };
const tabs = { login: $("#tab-login"), register: $("#tab-register") };
const errorBox = $("#auth-error");

function show(which) {
  for (const name of Object.keys(forms)) {
    const on = name === which;
    forms[name].hidden = !on;
    tabs[name].setAttribute("aria-selected", String(on));
  }
  errorBox.hidden = true;
  forms[which].querySelector("input")?.focus();
}

for (const [name, tab] of Object.entries(tabs)) tab.addEventListener("click", () => show(name));

// Only a page of this site is a valid place to return to (no open redirect): the browser's own URL
// parser decides, since it reads "/\\host" or "/<tab>/host" as another origin.
function nextPage() {
  const asked = new URLSearchParams(location.search).get("next") || "/app";
  try {
    const url = new URL(asked, location.origin);
    if (url.origin === location.origin && asked.startsWith("/")) return url.pathname + url.search + url.hash;
  } catch { /* not a URL at all */ }
  return "/app";
}

function fail(error) {
  errorBox.hidden = false;
  if (error instanceof ApiError) {
    const detail = error.errors ? Object.values(error.errors).map((e) => e?._errors?.[0]?.message).filter(Boolean) : [];
    errorBox.textContent = [error.message, ...detail].join(" · ");
  } else {
    errorBox.textContent = t("error_generic", { message: String(error) });
  }
}

async function submit(event, call) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const data = Object.fromEntries(new FormData(form));
    const result = await call(data);
    token.set(result.token);
    location.assign(nextPage());
  } catch (error) {
    fail(error);
  } finally {
    button.disabled = false;
  }
}

forms.login.addEventListener("submit", (e) => submit(e, (d) => api("POST", "/auth/login", { login: d.username, password: d.password })));
forms.register.addEventListener("submit", (e) => submit(e, (d) => api("POST", "/auth/register", {
  username: d.username, password: d.password, ...(d.global_name ? { global_name: d.global_name } : {}),
})));

if (new URLSearchParams(location.search).get("mode") === "register") show("register");
if (token.get()) location.assign(nextPage());
