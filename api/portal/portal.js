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
  if (endpoint.disabled_reason) facts.append(el("dt", { text: "Disabled because" }), el("dd", { text: endpoint.disabled_reason }));
  // Health and rate limit: shown when this API version reports them.
  if ("health" in endpoint) {
    const since = endpoint.failing_since ? ` since ${when(endpoint.failing_since)}` : "";
    facts.append(el("dt", { text: "Health" }), el("dd", {}, el("span", { class: `badge ${endpoint.health}`, text: endpoint.health + since })));
  }
  if ("rate_limit" in endpoint) {
    facts.append(el("dt", { text: "Rate limit" }), el("dd", { text: endpoint.rate_limit ? `${endpoint.rate_limit} deliveries per second` : "None" }));
  }
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
  card.append(
    el("h3", { class: "url", text: endpoint.url }),
    endpoint.description ? el("p", { text: endpoint.description }) : null,
    facts, secretSlot, actions, el("div", { class: "form-slot" }),
  );
  return card;
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

async function openForm(container, endpoint) {
  const types = await act(loadEventTypes);
  if (types === undefined) return;
  const slot = container.querySelector(".form-slot");
  const chosen = endpoint ? endpoint.event_types : null;
  const known = new Set(types.map((t) => t.name));
  const boxes = types.map((t) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: "event_type", value: t.name, checked: chosen !== null && chosen.includes(t.name) }),
    ` ${t.name}`));
  const others = (chosen || []).filter((name) => !known.has(name));
  const uid = Math.random().toString(36).slice(2);
  const form = el(
    "form", { class: "card form", "aria-label": endpoint ? "Edit endpoint" : "New endpoint", novalidate: true },
    el("h3", { text: endpoint ? "Edit endpoint" : "New endpoint" }),
    el("label", { for: `url-${uid}` }, "URL"),
    el("input", { id: `url-${uid}`, name: "url", type: "url", required: true, maxlength: "2048", placeholder: "https://example.com/webhooks", value: endpoint ? endpoint.url : "" }),
    el("label", { for: `desc-${uid}` }, "Description"),
    el("input", { id: `desc-${uid}`, name: "description", type: "text", maxlength: "2048", value: endpoint && endpoint.description ? endpoint.description : "" }),
    el("fieldset", {},
      el("legend", { text: "Event types" }),
      el("label", { class: "check" }, el("input", { type: "radio", name: "scope", value: "all", checked: chosen === null }), " All event types"),
      el("label", { class: "check" }, el("input", { type: "radio", name: "scope", value: "some", checked: chosen !== null }), " Only the types chosen below"),
      el("div", { class: "types" }, boxes.length ? boxes : el("p", { class: "muted", text: "No event types are registered." })),
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
      body.event_types = [...data.getAll("event_type").map(String), ...more];
    } else {
      body.event_types = null;
    }
    if (!body.url) { showError("Enter the URL that should receive the webhooks."); return; }
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

async function renderEventTypes() {
  state.eventTypes = null;
  const types = await loadEventTypes();
  const list = el("ul", { class: "cards", "aria-label": "Event types" });
  for (const type of types) {
    const payload = { id: "evt_…", type: type.name, timestamp: new Date(0).toISOString(), data: type.schema ? example(type.schema) : {} };
    list.append(el("li", { class: "card", "aria-label": type.name },
      el("h3", { text: type.name }),
      el("p", { class: type.description ? "" : "muted", text: type.description || "No description." }),
      el("details", {}, el("summary", { text: "Schema" }),
        type.schema ? el("pre", { text: JSON.stringify(type.schema, null, 2) }) : el("p", { class: "muted", text: "No schema: any JSON object." })),
      el("details", {}, el("summary", { text: "Example payload" }), el("pre", { text: JSON.stringify(payload, null, 2) })),
    ));
  }
  return el("section", { "aria-labelledby": "types-heading" },
    el("h2", { id: "types-heading", text: "Event types" }),
    el("p", { class: "muted", text: "Every webhook is a POST with this JSON body, signed with the endpoint's secret (Standard Webhooks)." }),
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
