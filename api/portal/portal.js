// Hookline's subscriber portal: one application's endpoints, event types and deliveries.
//
// No framework and no build step: the API serves this file as is. Everything shown is built with
// textContent (never innerHTML), so nothing the API returns can run as code. The token comes in
// the URL's fragment (never sent to a server), moves to this tab's sessionStorage, and is wiped
// from the address bar at once.
"use strict";

const STATUSES = ["pending", "retrying", "paused", "succeeded", "dead_lettered"];
const PAGE = 25;

const session = { app: null, token: null, expires: null };
const state = { view: "endpoints", endpoints: [], eventTypes: null, filters: { status: "", endpoint: "" }, shown: 0 };
const eventCache = new Map();
let expiryTimer = null;

// --- small DOM helpers --------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function button(label, onclick, props) {
  return el("button", { type: "button", onclick, ...(props || {}) }, label);
}

const $ = (id) => document.getElementById(id);

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function say(message) {
  $("status").textContent = message;
}

function showError(message) {
  const notice = $("notice");
  notice.replaceChildren(el("p", { class: "error" }, message), button("Dismiss", () => notice.replaceChildren()));
}

function clearError() {
  $("notice").replaceChildren();
}

// --- access ---------------------------------------------------------------------------------------

class PortalError extends Error {}

function readAccess() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("hookline-portal", JSON.stringify({
      app: fragment.get("app"), token: fragment.get("token"), expires: Number(fragment.get("expires")) || null,
    }));
    // Out of the address bar, the history and any bookmark.
    history.replaceState(null, "", location.pathname);
  }
  const saved = JSON.parse(sessionStorage.getItem("hookline-portal") || "null");
  if (saved && saved.app && saved.token) Object.assign(session, saved);
}

function expired() {
  return session.expires !== null && Date.now() >= session.expires * 1000;
}

function lockOut(message) {
  // After expiry (or revocation) nothing of the application stays on screen.
  sessionStorage.removeItem("hookline-portal");
  session.token = null;
  clearTimeout(expiryTimer);
  $("nav").hidden = true;
  $("main").replaceChildren(el("section", { class: "card" }, el("h2", { text: "No access" }), el("p", { text: message })));
  $("title").textContent = "Webhooks";
  $("expiry").textContent = "";
  $("status").textContent = "";
  $("notice").replaceChildren();
}

const EXPIRED = "This portal link has expired or was revoked. Ask the service that sent it for a new link.";

function watchExpiry() {
  if (session.expires === null) return;
  const left = session.expires * 1000 - Date.now();
  const at = new Date(session.expires * 1000);
  $("expiry").textContent = `Access expires at ${at.toLocaleTimeString()}.`;
  expiryTimer = setTimeout(() => lockOut(EXPIRED), Math.max(0, Math.min(left, 2 ** 31 - 1)));
}

// --- the API --------------------------------------------------------------------------------------

const STATUS_WORDS = {
  400: "The request was not understood.",
  401: EXPIRED,
  403: "This portal link does not allow that.",
  404: "Not found: it may have been deleted.",
  409: "That cannot be done in the current state.",
  413: "That is too large.",
  422: "Some of what was entered is not valid.",
  429: "Too many requests: wait a moment and try again.",
  502: "The delivery service is misconfigured; try again later.",
  503: "The delivery service is busy or restarting; try again in a moment.",
};

function fieldName(loc) {
  return (loc || []).filter((part) => part !== "body" && part !== "query" && part !== "path").join(" › ");
}

async function describe(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  const general = STATUS_WORDS[response.status] || `The request failed (HTTP ${response.status}).`;
  if (response.status === 422 && body && Array.isArray(body.errors) && body.errors.length) {
    const problems = body.errors.slice(0, 5).map((e) => {
      const field = fieldName(e.loc);
      const msg = String(e.msg || "is not valid").replace(/^Value error, /, "");
      return field ? `${field}: ${msg}` : msg;
    });
    return `${general} ${problems.join("; ")}.`;
  }
  if (body && typeof body.detail === "string" && response.status !== 401) {
    const detail = body.detail.charAt(0).toUpperCase() + body.detail.slice(1);
    return response.status === 404 || response.status === 409 || response.status === 422 ? `${detail}.` : `${general} ${detail}.`;
  }
  return general;
}

async function api(method, path, body) {
  if (!session.token || expired()) {
    lockOut(EXPIRED);
    throw new PortalError(EXPIRED);
  }
  const init = {
    method,
    headers: { authorization: `Bearer ${session.token}` },
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`v1${path}`, init);
  } catch (_) {
    throw new PortalError("The server could not be reached. Check the connection and try again.");
  }
  if (response.status === 401) {
    lockOut(EXPIRED);
    throw new PortalError(EXPIRED);
  }
  if (!response.ok) throw new PortalError(await describe(response));
  return response.status === 204 ? null : response.json();
}

const app = (path) => `/apps/${encodeURIComponent(session.app)}${path}`;

// Runs an action; its error is shown in words, the view is refreshed after a change.
async function act(work, done) {
  clearError();
  try {
    const result = await work();
    if (done) say(done);
    return result;
  } catch (error) {
    if (session.token) showError(error instanceof PortalError ? error.message : "Something went wrong. Try again.");
    if (!(error instanceof PortalError)) console.error(error);
    return undefined;
  }
}

// --- views ----------------------------------------------------------------------------------------

async function show(view, options) {
  state.view = view;
  for (const tab of document.querySelectorAll("#nav button")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  clearError();
  const render = { endpoints: renderEndpoints, "event-types": renderEventTypes, deliveries: renderDeliveries }[view];
  // Views load over the network: only the one asked for last is put on screen, so a slow answer
  // for an earlier click never replaces what was clicked since.
  const ticket = ++state.shown;
  const section = await act(() => render(options || {}));
  if (section && ticket === state.shown && session.token) $("main").replaceChildren(section);
}

async function loadEndpoints() {
  const page = await api("GET", app("/endpoints?limit=250"));
  state.endpoints = page.data;
  return page.data;
}

async function loadEventTypes() {
  if (state.eventTypes === null) {
    const page = await api("GET", "/event-types?limit=250");
    state.eventTypes = page.data;
  }
  return state.eventTypes;
}

// Endpoints ----------------------------------------------------------------------------------------

async function renderEndpoints() {
  const endpoints = await loadEndpoints();
  const list = el("ul", { class: "cards", "aria-label": "Endpoints" });
  for (const endpoint of endpoints) list.append(endpointCard(endpoint));
  const section = el(
    "section", { "aria-labelledby": "endpoints-heading" },
    el("div", { class: "heading" }, el("h2", { id: "endpoints-heading", text: "Endpoints" }),
      button("Add endpoint", () => openForm(section, null), { class: "primary" })),
    el("div", { class: "form-slot" }),
    endpoints.length ? list : el("p", { class: "muted", text: "No endpoints yet. Add one to start receiving webhooks." }),
  );
  return section;
}

function describeTypes(types) {
  return types === null || types === undefined ? "All event types" : types.length ? types.join(", ") : "No event types";
}

function endpointCard(endpoint) {
  const card = el("li", { class: "card endpoint", "aria-label": endpoint.url, "data-endpoint": endpoint.id });
  const facts = el(
    "dl", { class: "facts" },
    el("dt", { text: "Status" }), el("dd", {}, el("span", { class: `badge ${endpoint.status}`, text: endpoint.status })),
    el("dt", { text: "Event types" }), el("dd", { text: describeTypes(endpoint.event_types) }),
  );
  facts.append(el("dt", { text: "Health" }), healthFact(endpoint));
  facts.append(el("dt", { text: "Rate limit" }), el("dd", { text: rateLimitWords(endpoint.rate_limit) }));
  const retry = endpoint.retry;
  if (retry) facts.append(el("dt", { text: "Retries" }), el("dd", { text: `up to ${retry.max_attempts} attempts, from ${retry.initial_interval_s} s apart` }));

  const secretSlot = el("div", { class: "secret-slot" });
  const actions = el("div", { class: "actions" });
  const refresh = () => show("endpoints");
  const toggle = endpoint.status === "paused"
    ? button("Resume", () => act(() => api("POST", app(`/endpoints/${endpoint.id}/resume`)), "Endpoint resumed.").then(refresh))
    : endpoint.status === "disabled"
      ? button("Enable", () => act(() => api("PATCH", app(`/endpoints/${endpoint.id}`), { status: "active" }), "Endpoint enabled.").then(refresh))
      : button("Pause", () => act(() => api("POST", app(`/endpoints/${endpoint.id}/pause`)), "Endpoint paused.").then(refresh));
  actions.append(
    button("Edit", () => openForm(card, endpoint)),
    toggle,
    button("Send test event", async () => {
      const event = await act(() => api("POST", app(`/endpoints/${endpoint.id}/test`), {}));
      if (event) say(`Test event ${event.id} sent. It appears in the deliveries.`);
    }),
    button("Reveal secret", () => revealSecret(endpoint, secretSlot)),
    button("Rotate secret", async () => {
      const result = await act(() => api("POST", app(`/endpoints/${endpoint.id}/secret/rotate`)));
      if (result) {
        showSecret(secretSlot, result.secret, "New signing secret (the previous one keeps signing for a while):");
        say("Secret rotated.");
      }
    }),
    button("Deliveries", () => { state.filters = { status: "", endpoint: endpoint.id }; show("deliveries"); }),
    button("Replay dead letters", async () => {
      const result = await act(() => api("POST", app("/dead-letters/replay"), { endpoint_id: endpoint.id }));
      if (result) say(result.replayed === 1 ? "1 dead letter replayed." : `${result.replayed} dead letters replayed.`);
    }),
    deleteButton(endpoint),
  );
  // Missing parts filtered out: the DOM's own append would print them as "null".
  card.append(...[
    el("h3", { class: "url", text: endpoint.url }),
    endpoint.description ? el("p", { text: endpoint.description }) : null,
    facts, versionNotices(endpoint), secretSlot, actions, el("div", { class: "form-slot" }),
  ].filter(Boolean));
  return card;
}

// Health in words: disabled (with the reason), failing since when, or healthy.
function healthFact(endpoint) {
  if (endpoint.status === "disabled") {
    const reason = endpoint.disabled_reason ? `: ${endpoint.disabled_reason}` : "";
    return el("dd", {}, el("span", { class: "badge disabled", text: "disabled" }),
      ` Disabled${reason}. Nothing is delivered; fix the receiver, then choose Enable and replay the dead letters.`);
  }
  if (endpoint.health === "failing") {
    const since = endpoint.failing_since ? ` since ${when(endpoint.failing_since)}` : "";
    return el("dd", {}, el("span", { class: "badge failing", text: "failing" }),
      ` Failing${since}. Deliveries wait without spending retries; one probe attempt at a time checks whether it is back.`);
  }
  return el("dd", {}, el("span", { class: "badge healthy", text: "healthy" }));
}

function rateLimitWords(limit) {
  if (!limit) return "No limit";
  return limit === 1 ? "At most 1 delivery per second" : `At most ${limit} deliveries per second`;
}

function day(iso) {
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
}

// Subscriptions pinned to a deprecated version, as the API reports them in `version_notices`.
function versionNotices(endpoint) {
  const notices = endpoint.version_notices || [];
  if (!notices.length) return null;
  return el("ul", { class: "notices", "aria-label": "Version notices" }, notices.map((n) => el("li", {
    text: n.state === "sunset"
      ? `Version ${n.version} of ${n.event_type} (subscribed as ${n.entry}) reached its sunset${n.sunset_at ? ` on ${day(n.sunset_at)}` : ""}: `
        + "it is no longer published and arrives only when it can be derived from another version. Edit the endpoint to choose a later version."
      : `Version ${n.version} of ${n.event_type} (subscribed as ${n.entry}) is deprecated`
        + `${n.sunset_at ? ` and stops being published on ${day(n.sunset_at)}` : ""}. Edit the endpoint to choose a later version.`,
  })));
}

function deleteButton(endpoint) {
  const wrap = el("span", { class: "confirm" });
  const ask = button("Delete", () => {
    wrap.replaceChildren(
      el("span", { text: "Delete this endpoint? " }),
      button("Yes, delete", async () => {
        const done = await act(() => api("DELETE", app(`/endpoints/${endpoint.id}`)), "Endpoint deleted.");
        if (done !== undefined) show("endpoints");
      }, { class: "danger" }),
      button("Keep it", () => wrap.replaceChildren(ask)),
    );
  });
  wrap.append(ask);
  return wrap;
}

function showSecret(slot, secret, label) {
  slot.replaceChildren(el("p", {}, label || "Signing secret:"), el("code", { class: "secret", text: secret }),
    button("Hide secret", () => slot.replaceChildren()));
}

async function revealSecret(endpoint, slot) {
  const result = await act(() => api("GET", app(`/endpoints/${endpoint.id}/secret`)));
  if (result) showSecret(slot, result.secret);
}

// A catalog type's versions, newest first; a type read without them has its one version, v1.
function versionsOf(type) {
  const versions = type.versions && type.versions.length ? type.versions
    : [{ version: "v1", description: type.description, schema: type.schema, example: null, deprecated: false, sunset_at: null, sunset: false }];
  return [...versions].sort((a, b) => Number(b.version.slice(1)) - Number(a.version.slice(1)));
}

function latestOf(type) {
  return type.latest_version || versionsOf(type)[0].version;
}

function splitPin(entry) {
  const at = entry.indexOf("@");
  return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
}

// The version a subscription asks for: as published (no pin), always the latest, or one version.
function versionSelect(type, pin, uid) {
  const latest = latestOf(type);
  return el("select", { name: `version:${type.name}`, "aria-label": `Version of ${type.name}`, id: `ver-${uid}-${type.name}` },
    el("option", { value: "", text: "as published", selected: pin === "" }),
    el("option", { value: "latest", text: `always the latest (now ${latest})`, selected: pin === "latest" }),
    versionsOf(type).map((v) => el("option", {
      value: v.version, selected: pin === v.version,
      text: `${v.version}${v.version === latest ? " (latest)" : ""}${v.sunset ? " (past its sunset)" : v.deprecated ? " (deprecated)" : ""}`,
    })));
}

const RATE_LIMIT_WORDS = "Rate limit: enter a whole number of deliveries per second from 1 to 10000, or leave it empty for no limit.";

// null for no limit, the number, or undefined when what was typed is not a limit.
function readRateLimit(raw) {
  const text = String(raw || "").trim();
  if (!text) return null;
  if (!/^[0-9]{1,6}$/.test(text)) return undefined;
  const limit = Number(text);
  return limit >= 1 && limit <= 10000 ? limit : undefined;
}

async function openForm(container, endpoint) {
  const types = await act(loadEventTypes);
  if (types === undefined) return;
  const slot = container.querySelector(".form-slot");
  const chosen = endpoint ? endpoint.event_types : null;
  const known = new Set(types.map((t) => t.name));
  // Entries naming a catalog type (pinned or not) are ticked boxes; the rest are free text.
  const pins = new Map();
  for (const entry of chosen || []) {
    const [name, pin] = splitPin(entry);
    if (known.has(name) && !pins.has(name)) pins.set(name, pin);
  }
  const others = (chosen || []).filter((entry) => !known.has(splitPin(entry)[0]));
  const uid = Math.random().toString(36).slice(2);
  const choices = types.map((t) => {
    const pin = pins.get(t.name) || "";
    const many = versionsOf(t).length > 1 || pin !== "";
    return el("div", { class: "type-choice" },
      el("label", { class: "check" },
        el("input", { type: "checkbox", name: "event_type", value: t.name, checked: pins.has(t.name) }), ` ${t.name}`),
      many ? versionSelect(t, pin, uid) : null);
  });
  const form = el(
    "form", { class: "card form", "aria-label": endpoint ? "Edit endpoint" : "New endpoint", novalidate: true },
    el("h3", { text: endpoint ? "Edit endpoint" : "New endpoint" }),
    el("label", { for: `url-${uid}` }, "URL"),
    el("input", { id: `url-${uid}`, name: "url", type: "url", required: true, maxlength: "2048", placeholder: "https://example.com/webhooks", value: endpoint ? endpoint.url : "" }),
    el("label", { for: `desc-${uid}` }, "Description"),
    el("input", { id: `desc-${uid}`, name: "description", type: "text", maxlength: "2048", value: endpoint && endpoint.description ? endpoint.description : "" }),
    el("label", { for: `rate-${uid}` }, "Rate limit (deliveries per second)"),
    el("input", { id: `rate-${uid}`, name: "rate_limit", type: "text", inputmode: "numeric", maxlength: "6", placeholder: "No limit",
      "aria-describedby": `rate-help-${uid}`, value: endpoint && endpoint.rate_limit ? String(endpoint.rate_limit) : "" }),
    el("p", { id: `rate-help-${uid}`, class: "muted hint", text: "1 to 10000; empty for no limit. Deliveries over it wait their turn." }),
    el("fieldset", {},
      el("legend", { text: "Event types" }),
      el("label", { class: "check" }, el("input", { type: "radio", name: "scope", value: "all", checked: chosen === null }), " All event types"),
      el("label", { class: "check" }, el("input", { type: "radio", name: "scope", value: "some", checked: chosen !== null }), " Only the types chosen below"),
      el("div", { class: "types" }, choices.length ? choices : el("p", { class: "muted", text: "No event types are registered." })),
      el("label", { for: `more-${uid}` }, "Other types or patterns (comma-separated, e.g. invoice.*)"),
      el("input", { id: `more-${uid}`, name: "more", type: "text", value: others.join(", ") }),
    ),
    el("div", { class: "actions" },
      el("button", { type: "submit", class: "primary" }, "Save"),
      button("Cancel", () => slot.replaceChildren())),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const data = new FormData(form);
    const body = { url: String(data.get("url")).trim(), description: String(data.get("description")) || null };
    if (data.get("scope") === "some") {
      const more = String(data.get("more")).split(",").map((s) => s.trim()).filter(Boolean);
      const picked = data.getAll("event_type").map(String).map((name) => {
        const pin = data.get(`version:${name}`);
        return pin ? `${name}@${pin}` : name;
      });
      body.event_types = [...picked, ...more];
    } else {
      body.event_types = null;
    }
    if (!body.url) { showError("Enter the URL that should receive the webhooks."); return; }
    const limit = readRateLimit(data.get("rate_limit"));
    if (limit === undefined) { showError(RATE_LIMIT_WORDS); return; }
    // Sent only when it changes: setting it restarts the endpoint's rate from now.
    if (limit !== (endpoint ? endpoint.rate_limit ?? null : null)) body.rate_limit = limit;
    const saved = endpoint
      ? await act(() => api("PATCH", app(`/endpoints/${endpoint.id}`), body), "Endpoint saved.")
      : await act(() => api("POST", app("/endpoints"), body), "Endpoint added.");
    if (saved) show("endpoints");
  });
  slot.replaceChildren(form);
  form.querySelector("input[name=url]").focus();
}

// Event types ----------------------------------------------------------------------------------------

function example(schema, depth) {
  depth = depth || 0;
  if (!schema || typeof schema !== "object" || depth > 6) return null;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ("default" in schema) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(schema[key]) && schema[key].length) return example(schema[key][0], depth + 1);
  }
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type || (schema.properties ? "object" : null)) {
    case "object": {
      const out = {};
      for (const [name, sub] of Object.entries(schema.properties || {})) out[name] = example(sub, depth + 1);
      return out;
    }
    case "array": return [example(schema.items, depth + 1)];
    case "string": {
      const formats = { "date-time": new Date(0).toISOString(), date: "2024-01-31", email: "someone@example.com", uri: "https://example.com", uuid: "00000000-0000-4000-8000-000000000000" };
      return formats[schema.format] || "string";
    }
    case "integer": return typeof schema.minimum === "number" ? schema.minimum : 1;
    case "number": return typeof schema.minimum === "number" ? schema.minimum : 1.5;
    case "boolean": return true;
    case "null": return null;
    default: return null;
  }
}

// What a version's deprecation means for a subscriber, in words; null for a current version.
function deprecationWords(version, latest) {
  const move = version.version === latest ? "" : ` Subscribe to ${latest} instead.`;
  if (version.sunset) {
    return `Past its sunset${version.sunset_at ? ` on ${day(version.sunset_at)}` : ""}: no longer published; `
      + `endpoints pinned to it get it only when it can be derived from another version.${move}`;
  }
  if (version.deprecated) {
    return `Deprecated${version.sunset_at ? `: stops being published on ${day(version.sunset_at)}` : ""}.${move}`;
  }
  return null;
}

function versionBlock(type, version, latest, many) {
  const envelope = { id: "evt_…", type: type.name };
  if (many) envelope.version = version.version;  // the envelope names the version once a type has several
  envelope.timestamp = new Date(0).toISOString();
  envelope.data = version.example || (version.schema ? example(version.schema) : {});
  const words = deprecationWords(version, latest);
  const state = version.sunset ? "sunset" : version.deprecated ? "deprecated" : version.version === latest ? "latest" : null;
  return el("section", { class: "version", "aria-label": `${type.name} ${version.version}` },
    el("h4", {}, version.version, " ", state ? el("span", { class: `badge ${state}`, text: state === "sunset" ? "past its sunset" : state }) : null),
    words ? el("p", { class: "deprecation", text: words }) : null,
    many && version.description ? el("p", { text: version.description }) : null,
    el("details", {}, el("summary", { text: "Schema" }),
      version.schema ? el("pre", { text: JSON.stringify(version.schema, null, 2) }) : el("p", { class: "muted", text: "No schema: any JSON object." })),
    el("details", {}, el("summary", { text: version.example ? "Example payload" : "Example payload (made from the schema)" }),
      el("pre", { text: JSON.stringify(envelope, null, 2) })));
}

async function renderEventTypes() {
  state.eventTypes = null;
  const types = await loadEventTypes();
  const list = el("ul", { class: "cards", "aria-label": "Event types" });
  for (const type of types) {
    const versions = versionsOf(type);
    const latest = latestOf(type);
    const many = versions.length > 1;
    list.append(el("li", { class: "card", "aria-label": type.name },
      el("h3", { text: type.name }),
      // A type's own description is its latest version's: with several, each version says its own.
      many ? null : el("p", { class: type.description ? "" : "muted", text: type.description || "No description." }),
      el("p", { class: "muted", text: many ? `Versions ${versions.map((v) => v.version).join(", ")}; the latest is ${latest}.` : `One version, ${latest}.` }),
      versions.map((v) => versionBlock(type, v, latest, many)),
    ));
  }
  return el("section", { "aria-labelledby": "types-heading" },
    el("h2", { id: "types-heading", text: "Event types" }),
    el("p", { class: "muted", text: "Every webhook is a POST with this JSON body, signed with the endpoint's secret (Standard Webhooks). "
      + "An endpoint receives each event at the version it was published, or at the version it subscribed to (Edit › Event types)." }),
    types.length ? list : el("p", { class: "muted", text: "No event types are registered yet." }));
}

// Deliveries -----------------------------------------------------------------------------------------

async function eventOf(eventId) {
  if (!eventCache.has(eventId)) {
    eventCache.set(eventId, api("GET", app(`/events/${eventId}`)).catch(() => null));
  }
  return eventCache.get(eventId);
}

async function renderDeliveries() {
  if (!state.endpoints.length) await loadEndpoints();
  const statusSelect = el("select", { id: "filter-status", name: "status" },
    el("option", { value: "", text: "Any status" }),
    STATUSES.map((s) => el("option", { value: s, text: s.replace("_", " "), selected: state.filters.status === s })));
  const endpointSelect = el("select", { id: "filter-endpoint", name: "endpoint" },
    el("option", { value: "", text: "Any endpoint" }),
    state.endpoints.map((e) => el("option", { value: e.id, text: e.url, selected: state.filters.endpoint === e.id })));
  const apply = () => {
    state.filters = { status: statusSelect.value, endpoint: endpointSelect.value };
    show("deliveries");
  };
  statusSelect.addEventListener("change", apply);
  endpointSelect.addEventListener("change", apply);
  const list = el("ul", { class: "cards", "aria-label": "Deliveries" });
  const more = el("div", { class: "actions" });
  const section = el("section", { "aria-labelledby": "deliveries-heading" },
    el("div", { class: "heading" }, el("h2", { id: "deliveries-heading", text: "Deliveries" }), button("Refresh", apply)),
    el("div", { class: "filters" },
      el("label", { for: "filter-status" }, "Status"), statusSelect,
      el("label", { for: "filter-endpoint" }, "Endpoint"), endpointSelect),
    list, more);
  await loadDeliveries(list, more, null);
  return section;
}

async function loadDeliveries(list, more, cursor) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (state.filters.status) params.set("status", state.filters.status);
  if (state.filters.endpoint) params.set("endpoint_id", state.filters.endpoint);
  if (cursor) params.set("cursor", cursor);
  const page = await api("GET", app(`/deliveries?${params}`));
  if (!page.data.length && !cursor) list.replaceWith(el("p", { class: "muted", text: "No deliveries match." }));
  for (const delivery of page.data) list.append(deliveryCard(delivery));
  more.replaceChildren(page.next_cursor ? button("Load more", () => act(() => loadDeliveries(list, more, page.next_cursor))) : "");
}

function deliveryCard(delivery) {
  const endpoint = state.endpoints.find((e) => e.id === delivery.endpoint_id);
  const typeSlot = el("dd", { text: "…" });
  const attemptsSlot = el("div", { class: "attempts" });
  const card = el("li", { class: "card delivery", "data-delivery": delivery.id, "data-status": delivery.status },
    el("h3", {}, el("span", { class: `badge ${delivery.status}`, text: delivery.status.replace("_", " ") }), " ", el("code", { text: delivery.id })),
    el("dl", { class: "facts" },
      el("dt", { text: "Event type" }), typeSlot,
      el("dt", { text: "Event" }), el("dd", {}, el("code", { text: delivery.event_id })),
      el("dt", { text: "Endpoint" }), el("dd", { text: endpoint ? endpoint.url : delivery.endpoint_id }),
      el("dt", { text: "Attempts" }), el("dd", { text: String(delivery.attempts) }),
      el("dt", { text: "Last response" }), el("dd", { text: delivery.last_status_code ? `HTTP ${delivery.last_status_code}` : "—" }),
      delivery.last_error ? [el("dt", { text: "Last error" }), el("dd", { text: delivery.last_error })] : null,
      delivery.next_attempt_at ? [el("dt", { text: "Next attempt" }), el("dd", { text: when(delivery.next_attempt_at) })] : null,
      el("dt", { text: "Updated" }), el("dd", { text: when(delivery.updated_at) })),
    el("div", { class: "actions" },
      button("Attempts", () => toggleAttempts(delivery, attemptsSlot)),
      button("Replay", async () => {
        const replayed = await act(() => api("POST", app(`/deliveries/${delivery.id}/replay`)), "Delivery replayed: it goes out again now.");
        // A moment later, to show its new status, unless the subscriber has moved on.
        if (replayed) setTimeout(() => { if (state.view === "deliveries") show("deliveries"); }, 1500);
      })),
    attemptsSlot);
  eventOf(delivery.event_id).then((event) => { typeSlot.textContent = event ? event.type : "unknown"; });
  return card;
}

async function toggleAttempts(delivery, slot) {
  if (slot.childElementCount) { slot.replaceChildren(); return; }
  const page = await act(() => api("GET", app(`/deliveries/${delivery.id}/attempts?limit=250`)));
  if (!page) return;
  if (!page.data.length) { slot.replaceChildren(el("p", { class: "muted", text: "No attempt yet." })); return; }
  slot.replaceChildren(el("ol", { class: "attempt-list", "aria-label": `Attempts of ${delivery.id}` },
    page.data.map((a) => el("li", {},
      el("p", {}, el("strong", { text: `Attempt ${a.number}` }), ` · ${when(a.started_at)} · ${a.duration_ms} ms · `,
        a.status_code ? `HTTP ${a.status_code}` : "no response"),
      a.error ? el("p", { class: "error", text: a.error }) : null,
      a.response_body ? el("details", {}, el("summary", { text: "Response body" }), el("pre", { text: a.response_body })) : null))));
}

// --- start ----------------------------------------------------------------------------------------

async function start() {
  readAccess();
  if (!session.token) {
    lockOut("Open this portal with the link you were given: it carries your access.");
    return;
  }
  if (expired()) { lockOut(EXPIRED); return; }
  watchExpiry();
  const application = await act(() => api("GET", app("")));
  if (!application) return;
  $("title").textContent = `Webhooks · ${application.name}`;
  document.title = `Webhooks · ${application.name}`;
  $("nav").hidden = false;
  for (const tab of document.querySelectorAll("#nav button")) tab.addEventListener("click", () => { say(""); show(tab.dataset.view); });
  await show("endpoints");
}

document.addEventListener("DOMContentLoaded", start);
