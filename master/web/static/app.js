// bramble's status page: one small module, no framework.
//
// The master pushes one compact "cluster view" (see helpers' web contract) over server-sent
// events; every `view` event re-renders the sections from it. Invariants:
// - Sections are rebuilt as strings of escaped HTML and only replaced when their HTML
//   changed, so an unchanged section keeps its DOM (focus, scroll); dialogs live outside
//   the sections, so a re-render never closes them.
// - Every POST carries the CSRF token of the session (from the view's `session.csrf`).
// - A 401 anywhere (also an event stream closed after a master restart) shows the login
//   form; any other loss of the stream shows "reconnecting" until a view arrives again.

const $ = (id) => document.getElementById(id);

const state = {
  view: null,
  csrf: "",
  authenticated: false,
  readOnly: false,
  source: null,   // the EventSource
  retryTimer: 0,
  retryDelay: 1000,
  busy: new Set(), // keys of actions whose POST is under way
  logs: null,     // {ns, name, ctl}
};

const LOG_LIMIT = 256 * 1024; // characters kept in the log dialog (the newest)

// --- small helpers ----------------------------------------------------------------------

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ESC[c]);

function bytes(n) {
  if (n == null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

const cores = (milli) => {
  const c = milli / 1000;
  return c >= 10 || Number.isInteger(c) ? String(Math.round(c)) : c.toFixed(c < 1 ? 2 : 1);
};

const plural = (n, one, many = one + "s") => `${n} ${n === 1 ? one : many}`;

function nsName(ns, name) {
  return `<span class="ns">${esc(ns)}/</span>${esc(name)}`;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function errorText(resp) {
  const text = await resp.text().catch(() => "");
  try {
    const status = JSON.parse(text);
    if (status && status.message) return status.message;
  } catch { /* not JSON: the text itself */ }
  const reason = resp.statusText ? ` ${resp.statusText}` : "";
  return `${resp.status}${reason}${text ? ": " + text.slice(0, 300) : ""}`;
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `the master cannot be reached (${err.message})`);
  }
  if (!resp.ok) throw new ApiError(resp.status, await errorText(resp));
  if (resp.status === 204) return {};
  return resp.json().catch(() => ({}));
}

// --- messages ---------------------------------------------------------------------------

let flashTimer = 0;
function flash(text) {
  clearTimeout(flashTimer);
  $("flash").textContent = text;
  flashTimer = setTimeout(() => { $("flash").textContent = ""; }, 8000);
}

function notice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function setConn(kind, text) {
  const el = $("conn");
  el.dataset.state = kind;
  el.textContent = text;
}

// --- session and the live stream ----------------------------------------------------------

async function start() {
  clearTimeout(state.retryTimer);
  let session;
  try {
    session = await request("GET", "/web/v1/session");
  } catch (err) {
    setConn("reconnecting", "Reconnecting…");
    retryLater(start);
    return;
  }
  state.authenticated = !!session.authenticated;
  state.readOnly = !!session.readOnly;
  state.csrf = session.csrf || "";
  if (state.authenticated || state.readOnly) connect();
  else showLogin();
}

function retryLater(fn) {
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(fn, state.retryDelay);
  state.retryDelay = Math.min(state.retryDelay * 2, 10000);
}

function closeSource() {
  if (state.source) state.source.close();
  state.source = null;
}

function connect() {
  closeSource();
  if (!state.view) setConn("connecting", "Connecting…");
  const source = new EventSource("/web/v1/events");
  state.source = source;
  source.addEventListener("view", (ev) => {
    let view;
    try { view = JSON.parse(ev.data); } catch { return; }
    state.retryDelay = 1000;
    setConn("live", "Live");
    render(view);
  });
  source.addEventListener("error", () => {
    if (source !== state.source) return;
    setConn("reconnecting", "Reconnecting…");
    // CONNECTING: EventSource retries by itself (the master is away). CLOSED: the
    // server answered with an error status - 401 after a master restart, or 5xx - which
    // the session endpoint tells apart.
    if (source.readyState === EventSource.CLOSED) {
      closeSource();
      retryLater(start);
    }
  });
}

function showLogin() {
  closeSource();
  clearTimeout(state.retryTimer);
  state.view = null;
  state.authenticated = false;
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  $("dash").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  setConn("idle", "Not logged in");
  document.title = "Log in · bramble";
  $("token").focus();
}

async function login(ev) {
  ev.preventDefault();
  const token = $("token").value.trim();
  const error = $("login-error");
  if (!token) {
    error.textContent = "Enter the admin token.";
    error.hidden = false;
    return;
  }
  const button = ev.target.querySelector("button[type=submit]");
  button.disabled = true;
  error.hidden = true;
  try {
    await request("POST", "/web/v1/login", { token });
    $("token").value = "";
    $("login-expired").hidden = true;
    $("login").hidden = true;
    await start();
  } catch (err) {
    error.textContent = `${err.status === 429 ? "Too many attempts" : "Login failed"}: ${err.message}`;
    error.hidden = false;
    $("token").focus();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  if (!state.authenticated) { showLogin(); return; }
  try {
    await request("POST", "/web/v1/logout", {});
  } catch (err) {
    if (err.status !== 401) { notice(`Logging out failed: ${err.message}`); return; }
  }
  $("notice").hidden = true;
  showLogin();
  flash("Logged out.");
}

// --- rendering ----------------------------------------------------------------------------

// Replace a section's content only when its HTML changed, keeping the focused control.
function put(id, html) {
  const el = $(id);
  if (el.dataset.html === html) return;
  const active = document.activeElement;
  const key = el.contains(active) ? active.dataset.key : null;
  el.innerHTML = html;
  el.dataset.html = html;
  if (key) {
    const again = el.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

function button(act, label, data, cls = "") {
  const key = `${act}:${data.ns || ""}/${data.name || data.node || ""}`;
  const attrs = Object.entries(data).map(([k, v]) => ` data-${k}="${esc(v)}"`).join("");
  const busy = state.busy.has(key) ? " disabled" : "";
  return `<button type="button" class="btn small ${cls}" data-act="${act}" data-key="${esc(key)}"${attrs}${busy}>${label}</button>`;
}

const empty = (what) => `<li class="empty">${what}</li>`;

function badge(text, kind) {
  return `<span class="badge ${kind}">${esc(text)}</span>`;
}

function bar(kind, label, percent, figure) {
  const p = Math.max(0, Math.min(100, Math.round(percent ?? 0)));
  const hot = p >= 90 ? " hot" : "";
  return `<div class="bar ${kind}" role="img" aria-label="${esc(`${label} ${p}%: ${figure}`)}">
    <span>${label} <b>${p}%</b></span>
    <span class="track"><span class="fill${hot}" style="width:${p}%"></span></span>
    <span class="figure">${esc(figure)}</span></div>`;
}

// A polyline per run of numbers; the x axis is the last hour, so a young node's line
// starts on the right.
function polyline(values, step, cls) {
  const span = 3600;
  const n = values.length;
  const runs = [];
  let run = [];
  values.forEach((v, i) => {
    if (typeof v !== "number") { if (run.length) runs.push(run); run = []; return; }
    const x = 100 - ((n - 1 - i) * step * 100) / span;
    if (x < 0) return;
    run.push(`${x.toFixed(2)},${(100 - Math.max(0, Math.min(100, v))).toFixed(1)}`);
  });
  if (run.length) runs.push(run);
  return runs.filter((r) => r.length > 1)
    .map((r) => `<polyline class="${cls}" points="${r.join(" ")}"/>`).join("");
}

function sparkline(history) {
  if (!history) return "";
  const cpu = (history.cpu || []).filter((v) => typeof v === "number");
  const mem = (history.memory || []).filter((v) => typeof v === "number");
  if (cpu.length < 2 && mem.length < 2) return "";
  const step = history.stepSeconds || 30;
  const peak = (xs) => (xs.length ? Math.max(...xs) : 0);
  const label = `Last hour: CPU peak ${peak(cpu)}%, memory peak ${peak(mem)}%`;
  return `<svg class="spark" viewBox="0 0 100 100" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">
    ${polyline(history.cpu || [], step, "cpu")}${polyline(history.memory || [], step, "mem")}</svg>
    <p class="spark-legend"><span>Last hour</span><span class="cpu">CPU ≤ ${peak(cpu)}%</span><span class="mem">memory ≤ ${peak(mem)}%</span></p>`;
}

function nodeCard(n) {
  const ready = n.ready ? badge("Ready", "ok") : badge(n.status === "Unknown" ? "Unknown" : "Not ready", "bad");
  const cordoned = n.unschedulable ? badge("Cordoned", "warn") : "";
  const roles = (n.roles || []).length ? n.roles.join(", ") : "worker";
  const cpu = n.cpu ? bar("cpu", "CPU", n.cpu.percent,
    `${cores(n.cpu.usedMilli)} of ${cores(n.cpu.allocatableMilli)} cores`) : "";
  const mem = n.memory ? bar("mem", "Memory", n.memory.percent,
    `${bytes(n.memory.usedBytes)} of ${bytes(n.memory.allocatableBytes)}`) : "";
  const usage = cpu || mem ? cpu + mem : `<p class="meta">No usage report yet.</p>`;
  let temp = "";
  if (n.temperatureC != null) {
    const t = Number(n.temperatureC);
    const kind = t >= 80 ? "bad" : t >= 70 ? "warn" : "info";
    temp = badge(`${t.toFixed(1)} °C`, kind);
  }
  const throttled = (n.throttled || []).length ? badge(`Throttled: ${n.throttled.join(", ")}`, "bad") : "";
  const node = { node: n.name };
  const acts = (n.unschedulable ? button("uncordon", "Uncordon", node) : button("cordon", "Cordon", node))
    + button("drain", "Drain", node);
  return `<li class="card node" data-node="${esc(n.name)}">
    <div class="card-head"><h3 class="name">${esc(n.name)}</h3>${ready}${cordoned}${temp}${throttled}</div>
    <p class="meta"><b>${esc(roles)}</b> · ${esc(n.arch || "?")}${n.address ? " · " + esc(n.address) : ""} · ${plural(n.pods ?? 0, "pod")} · age ${esc(n.age)}</p>
    ${usage}${sparkline(n.history)}
    <div class="acts">${acts}</div></li>`;
}

function pendingCard(p) {
  return `<li class="card pending" data-node="${esc(p.name)}">
    <div class="card-head"><h3 class="name">${esc(p.name)}</h3>${badge("Pending", "warn")}</div>
    <p class="meta">Fingerprint <b><code>${esc(p.fingerprint)}</code></b>${p.address ? " · from " + esc(p.address) : ""}</p>
    <div class="acts">${button("approve", "Approve", { node: p.name, fingerprint: p.fingerprint }, "primary")}</div></li>`;
}

function workloadRow(w) {
  const full = w.ready >= w.desired;
  const scale = button("scale", "Scale", { ns: w.namespace, name: w.name, kind: w.kind, replicas: w.desired });
  const acts = w.kind === "Deployment" ? scale + button("restart", "Restart", { ns: w.namespace, name: w.name })
    : w.kind === "DaemonSet" ? "" : scale;
  return `<li class="row workload" data-name="${esc(w.namespace + "/" + w.name)}">
    <div class="main"><span class="name">${nsName(w.namespace, w.name)}</span>
      <p class="meta">${esc(w.kind)} · ${w.upToDate ?? "?"} up to date · age ${esc(w.age)}</p></div>
    ${badge(`${w.ready}/${w.desired} ready`, full ? "ok" : "warn")}
    ${w.rollingOut ? badge("Rolling out", "info") : ""}${w.paused ? badge("Paused", "warn") : ""}
    <div class="acts">${acts}</div></li>`;
}

const JOB_KIND = { Complete: "ok", Running: "info", Failed: "bad", Suspended: "warn" };

function jobRow(j) {
  return `<li class="row job" data-name="${esc(j.namespace + "/" + j.name)}">
    <div class="main"><span class="name">${nsName(j.namespace, j.name)}</span>
      <p class="meta">${j.succeeded}/${j.completions ?? "?"} succeeded${j.failed ? ` · ${j.failed} failed` : ""} · age ${esc(j.age)}</p></div>
    ${badge(j.status, JOB_KIND[j.status] || "info")}</li>`;
}

function podKind(p) {
  if (p.failing) return "bad";
  if (p.phase === "Running") return "ok";
  if (p.phase === "Succeeded") return "info";
  return "warn";
}

function podRow(p) {
  const id = `${p.namespace}/${p.name}`;
  const logs = `<button type="button" class="linkbtn" data-act="logs" data-key="logs:${esc(id)}" data-ns="${esc(p.namespace)}" data-name="${esc(p.name)}" data-containers="${esc((p.containers || []).join(","))}" aria-label="${esc(id)}: read its logs">${nsName(p.namespace, p.name)}</button>`;
  return `<li class="row pod${p.failing ? " failing" : ""}" data-name="${esc(id)}">
    <div class="main">${logs}
      <p class="meta">${p.ready ? `${esc(p.ready)} ready · ` : ""}${plural(p.restarts ?? 0, "restart")} · ${p.node ? "on " + esc(p.node) : "not scheduled"} · age ${esc(p.age)}</p></div>
    ${badge(p.status || p.phase, podKind(p))}
    <div class="acts">${button("delete-pod", "Delete", { ns: p.namespace, name: p.name })}</div></li>`;
}

function serviceRow(s) {
  const ports = (s.ports || []).map((p) => {
    const links = (p.links || []).map((url) =>
      `<a class="port" href="${esc(url)}" target="_blank" rel="noopener">${esc(url.replace(/^https?:\/\//, ""))}</a>`).join(" ");
    return `<span>${p.port}/${esc(p.protocol || "TCP")}${p.nodePort ? ` → node port ${p.nodePort}` : ""}</span> ${links}`;
  }).join("<br>");
  return `<li class="row service" data-name="${esc(s.namespace + "/" + s.name)}">
    <div class="main"><span class="name">${nsName(s.namespace, s.name)}</span>
      <p class="meta">${esc(s.type)} · ${esc(s.clusterIP || "no cluster IP")}</p>
      <div class="meta ports">${ports}</div></div></li>`;
}

function eventRow(e) {
  const warn = e.type === "Warning";
  return `<li class="row event${warn ? " warning" : ""}">
    <div class="main"><span class="name">${esc(e.reason)}</span> ${warn ? badge("Warning", "warn") : ""}
      <p class="meta">${e.namespace ? esc(e.namespace) + "/" : ""}${esc(e.object)}${e.count > 1 ? ` · ×${e.count}` : ""} · ${esc(e.age)} ago</p>
      <p class="msg">${esc(e.message)}</p></div></li>`;
}

function list(items, row, none) {
  return items && items.length ? items.map(row).join("") : empty(none);
}

function render(view) {
  state.view = view;
  if (view.session) {
    state.csrf = view.session.csrf || state.csrf;
    state.readOnly = !!view.session.readOnly;
  }
  $("login").hidden = true;
  $("dash").hidden = false;
  $("logout").hidden = false;
  $("logout").textContent = state.authenticated ? "Log out" : "Log in";
  document.body.classList.toggle("read-only", state.readOnly);

  const name = view.cluster?.name || "bramble";
  $("cluster-name").textContent = name;
  const health = view.health || {};
  $("health").textContent = health.summary || "";
  $("health").dataset.level = health.level || "ok";
  document.title = `${health.level === "ok" ? "" : "⚠ "}${name} · bramble`;

  const pending = view.pendingNodes || [];
  $("pending-sec").hidden = pending.length === 0;
  put("pending", pending.map(pendingCard).join(""));
  put("nodes", list(view.nodes, nodeCard, "No nodes have joined yet."));
  put("workloads", list(view.workloads, workloadRow, "No deployments, daemon sets or stateful sets."));
  put("jobs", list(view.jobs, jobRow, "No jobs."));
  const more = view.podsTruncated ? `<li class="empty">${plural(view.podsTruncated, "more pod")} not shown.</li>` : "";
  put("pods", list(view.pods, podRow, "No pods.") + more);
  put("services", list(view.services, serviceRow, "No services."));
  put("events", list(view.events, eventRow, "No recent events."));

  const counts = { nodes: view.nodes, workloads: view.workloads, jobs: view.jobs,
    pods: view.pods, services: view.services, events: view.events };
  for (const [k, v] of Object.entries(counts)) $(`n-${k}`).textContent = (v || []).length;
  const at = view.generatedAt ? new Date(view.generatedAt) : null;
  $("generated").textContent = at && !isNaN(at) ? `Updated ${at.toLocaleTimeString()}` : "";
}

// --- actions ------------------------------------------------------------------------------

function confirmDialog({ title, text, ok, danger = true }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  const okButton = $("confirm-ok");
  okButton.textContent = ok;
  okButton.className = `btn ${danger ? "danger" : "primary"}`;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function scaleDialog(d) {
  const dialog = $("scale");
  $("scale-title").textContent = `Scale ${d.ns}/${d.name}`;
  const input = $("replicas");
  input.value = d.replicas;
  dialog.returnValue = "";
  dialog.showModal();
  input.select();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? Number.parseInt(input.value, 10) : null);
    }, { once: true });
  });
}

// What each button does: the question to ask first (destructive ones), the POST body.
const ACTIONS = {
  approve: {
    label: "Approving",
    ask: (d) => ({ title: `Approve ${d.node}?`, ok: "Approve", danger: false,
      text: `Approve it only if the node printed the fingerprint ${d.fingerprint}.` }),
    body: (d) => ({ node: d.node }),
  },
  cordon: { label: "Cordoning", body: (d) => ({ node: d.node }) },
  uncordon: { label: "Uncordoning", body: (d) => ({ node: d.node }) },
  drain: {
    label: "Draining",
    ask: (d) => ({ title: `Drain ${d.node}?`, ok: "Drain",
      text: "The node is cordoned and its pods are evicted (DaemonSet pods stay); their controllers start them on other nodes." }),
    body: (d) => ({ node: d.node }),
  },
  restart: {
    label: "Restarting",
    ask: (d) => ({ title: `Restart ${d.ns}/${d.name}?`, ok: "Restart",
      text: "Its pods are replaced by new ones, a few at a time (a rollout restart)." }),
    body: (d) => ({ namespace: d.ns, name: d.name }),
  },
  "delete-pod": {
    label: "Deleting",
    ask: (d) => ({ title: `Delete pod ${d.ns}/${d.name}?`, ok: "Delete",
      text: "Its containers are stopped. If a controller owns the pod, it starts a new one." }),
    body: (d) => ({ namespace: d.ns, name: d.name }),
  },
};

async function post(act, body, key, what) {
  state.busy.add(key);
  if (state.view) render(state.view);
  try {
    const answer = await request("POST", `/web/v1/actions/${act}`, body);
    flash(answer.message || `${what}: done.`);
    $("notice").hidden = true;
  } catch (err) {
    if (err.status === 401) { showLogin(); return; }
    notice(`${what} failed: ${err.message}`);
  } finally {
    state.busy.delete(key);
    if (state.view) render(state.view);
  }
}

async function onAction(ev) {
  const el = ev.target.closest("[data-act]");
  if (!el || el.disabled) return;
  const d = el.dataset;
  const key = d.key;
  if (d.act === "logs") {
    openLogs(d.ns, d.name, d.containers ? d.containers.split(",") : []);
    return;
  }
  if (state.readOnly && !state.authenticated) return;
  if (d.act === "scale") {
    const replicas = await scaleDialog(d);
    if (replicas == null || Number.isNaN(replicas)) return;
    await post("scale", { namespace: d.ns, kind: d.kind, name: d.name, replicas }, key,
      `Scaling ${d.ns}/${d.name} to ${replicas}`);
    return;
  }
  const action = ACTIONS[d.act];
  if (!action) return;
  if (action.ask && !(await confirmDialog(action.ask(d)))) return;
  const target = d.node || `${d.ns}/${d.name}`;
  await post(d.act, action.body(d), key, `${action.label} ${target}`);
}

// --- logs ---------------------------------------------------------------------------------

function openLogs(ns, name, containers) {
  $("logs-title").textContent = `Logs of ${ns}/${name}`;
  const select = $("logs-container");
  select.innerHTML = containers.map((c) => `<option>${esc(c)}</option>`).join("");
  select.disabled = containers.length < 2;
  state.logs = { ns, name, ctl: null };
  $("logs").showModal();
  streamLogs();
}

function appendLog(text) {
  const pre = $("logs-text");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 16;
  pre.append(text);
  if (pre.textContent.length > LOG_LIMIT) {
    const tail = pre.textContent.slice(-LOG_LIMIT);
    pre.textContent = tail.slice(tail.indexOf("\n") + 1);
  }
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

async function streamLogs() {
  const logs = state.logs;
  if (!logs) return;
  if (logs.ctl) logs.ctl.abort();
  const ctl = new AbortController();
  logs.ctl = ctl;
  const follow = $("logs-follow").checked;
  const container = $("logs-container").value;
  const query = new URLSearchParams({ tailLines: "200", follow: String(follow) });
  if (container) query.set("container", container);
  const status = $("logs-state");
  $("logs-text").textContent = "";
  status.textContent = "Loading…";
  const path = `/web/v1/logs/${encodeURIComponent(logs.ns)}/${encodeURIComponent(logs.name)}?${query}`;
  try {
    const resp = await fetch(path, { signal: ctl.signal, cache: "no-store", credentials: "same-origin" });
    if (resp.status === 401) { showLogin(); return; }
    if (!resp.ok) { status.textContent = `No logs: ${await errorText(resp)}`; return; }
    status.textContent = follow ? "Following new lines…" : "The last 200 lines.";
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      appendLog(value);
    }
    if (follow) status.textContent = "The log ended (the container stopped).";
  } catch (err) {
    if (err.name === "AbortError" || state.logs !== logs || logs.ctl !== ctl) return;
    // A phone changing networks (or the master restarting) breaks the stream: read the
    // tail again after a pause, for as long as the dialog stays open.
    status.textContent = `Reading the logs failed (${err.message}); trying again…`;
    setTimeout(() => { if (state.logs === logs && logs.ctl === ctl) streamLogs(); }, 2000);
  }
}

function closeLogs() {
  if (state.logs && state.logs.ctl) state.logs.ctl.abort();
  state.logs = null;
}

// --- wiring -------------------------------------------------------------------------------

function init() {
  if (new URLSearchParams(location.search).get("login") === "expired") {
    $("login-expired").hidden = false;
    history.replaceState(null, "", location.pathname);
  }
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  $("dash").addEventListener("click", onAction);
  $("logs-close").addEventListener("click", () => $("logs").close());
  $("logs").addEventListener("close", closeLogs);
  $("logs-follow").addEventListener("change", streamLogs);
  $("logs-container").addEventListener("change", streamLogs);
  const step = (by) => () => {
    const input = $("replicas");
    input.value = Math.max(0, (Number.parseInt(input.value, 10) || 0) + by);
  };
  $("replicas-down").addEventListener("click", step(-1));
  $("replicas-up").addEventListener("click", step(1));
  // A phone drops the stream in the background; come back live at once.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.source && !$("dash").hidden) start();
  });
  start();
}

init();
