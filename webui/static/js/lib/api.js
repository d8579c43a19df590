// The REST client every page uses: the same public /api/v10 as bots and third-party clients.
// The session token lives in localStorage (as Discord's web client keeps it).

const BASE = "/api/v10";
const TOKEN_KEY = "ts_token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 0;
    this.errors = body?.errors;
    this.retryAfter = body?.retry_after;
  }
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

function headers(extra = {}) {
  const out = { ...extra };
  const value = token.get();
  if (value) out.Authorization = `Bearer ${value}`;
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * api("GET", "/users/@me") -> parsed JSON (null for 204).
 * A 429 is waited out and retried (up to 3 times); other errors throw ApiError;
 * a 401 clears the token and sends the reader to the login page.
 */
export async function api(method, path, body, { query, signal, reason } = {}) {
  let url = BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.append(k, v);
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const extra = body === undefined ? {} : { "Content-Type": "application/json" };
  if (reason) extra["X-Audit-Log-Reason"] = encodeURIComponent(reason);
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, {
      method, signal, headers: headers(extra), body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    if (response.status === 429 && attempt < 3) {
      await sleep(Math.min(10, Number(data?.retry_after) || 1) * 1000);
      continue;
    }
    if (response.status === 401 && path !== "/auth/login") goToLogin();
    throw new ApiError(response.status, data);
  }
}

/**
 * Multipart upload with progress (fetch cannot report upload progress; XHR can).
 * form: a FormData; onProgress(fraction 0..1).
 */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    const value = token.get();
    if (value) xhr.setRequestHeader("Authorization", `Bearer ${value}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "network error" }));
    xhr.send(form);
  });
}

/** Fetch a protected file (attachments need the token) and return an object URL. */
export async function blobUrl(url) {
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) throw new ApiError(response.status, null);
  return URL.createObjectURL(await response.blob());
}

export function goToLogin() {
  token.clear();
  const next = location.pathname + location.search + location.hash;
  if (!location.pathname.startsWith("/login")) location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/** The signed-in user, or a redirect to the login page. */
export async function requireUser() {
  if (!token.get()) { goToLogin(); return new Promise(() => {}); }
  return api("GET", "/users/@me");
}
