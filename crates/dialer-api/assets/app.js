// Supervisor page: polls /api/status every 2 s, follows /api/events (server-sent events read
// through fetch, so the token travels in the Authorization header, never in a URL).
"use strict";

const STATES = ["ready", "on_call", "wrap_up", "reserved", "previewing", "paused", "logged_out"];
const LABEL = { ready: "ready", on_call: "on call", wrap_up: "wrap-up", reserved: "reserved",
  previewing: "preview", paused: "paused", logged_out: "logged out" };
let token = null;
let lastEventId = null;
let history = [];         // chart samples
const $ = (id) => document.getElementById(id);

function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("dialer-token", decodeURIComponent(m[1]));
    window.history.replaceState(null, "", location.pathname);
  }
  token = sessionStorage.getItem("dialer-token");
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) { askToken("The token was refused."); throw new Error("unauthorized"); }
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (_) {}
    throw new Error(detail);
  }
  return r.json();
}

function askToken(msg) {
  sessionStorage.removeItem("dialer-token");
  token = null;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function kpi(label, value, id) {
  const k = el("div", "kpi");
  const b = el("b", null, String(value));
  if (id) b.id = id;
  k.append(b, el("small", null, label));
  return k;
}

function secs(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
}

function pct(x) { return (100 * x).toFixed(2) + " %"; }

function render(status) {
  const tel = status.health.state === "down"
    ? ["bad", status.telephony + " down: " + status.health.fault]
    : ["ok", status.telephony + " up"];
  $("telephony").className = "badge " + tel[0];
  $("telephony").textContent = tel[1];
  $("clock").textContent = new Date(status.at).toLocaleString() + (status.draining ? " · draining" : "");
  const now = new Date(status.at).getTime();
  const main = $("campaigns");
  main.replaceChildren();
  for (const c of status.engine.campaigns) {
    const id = c.campaign;
    const card = el("section", "campaign");
    card.dataset.campaign = id;
    const h = el("h2", null, id);
    h.append(el("span", null, c.pacer + (c.dialing_paused ? " · paused: " + (c.dialing_paused.reason || c.dialing_paused.why) : " · dialing")));
    card.append(h);

    const agents = status.engine.agents.filter((a) => a.campaign === id || a.campaign === null);
    const byState = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const a of agents) byState[a.state.state] = (byState[a.state.state] || 0) + 1;
    const calls = status.engine.calls.filter((k) => k.campaign === id);
    const waiting = calls.filter((k) => k.state === "waiting");
    const longest = waiting.reduce((m, k) => Math.max(m, now - new Date(k.queued_at || k.answered_at || k.placed_at).getTime()), 0);
    // Since the campaign's local midnight (the server reads it off the spool's ledger).
    const today = (status.today || []).find((t) => t.campaign === id) || { dials: 0, answers: 0, abandons: 0 };

    const kpis = el("div", "kpis");
    kpis.append(
      kpi("agents logged in", agents.length - byState.logged_out, "agents-" + id),
      kpi("calls in flight", c.calls_in_flight, "calls-" + id),
      kpi("waiting for an agent", c.waiting, "waiting-" + id),
      kpi("longest wait", waiting.length ? secs(longest) : "–"),
      kpi("dials today", today.dials, "dials-today-" + id),
      kpi("answers today", today.answers, "answers-today-" + id),
      kpi("abandons today", today.abandons, "abandons-today-" + id),
      kpi("lines in use (" + status.telephony + ")", c.calls_in_flight, "lines-" + id));
    card.append(kpis);

    const a = c.abandonment;
    const rate = a.live_answers ? a.abandoned / a.live_answers : 0;
    const ab = el("div", "abandon");
    ab.append(el("div", null, "Abandonment " + pct(rate) + " of cap " + pct(a.cap) +
      " · " + a.abandoned + " of " + a.live_answers + " live answers · budget left " +
      Math.max(0, a.remaining_budget).toFixed(1) + " abandons" +
      (a.period_from ? " · window since " + new Date(a.period_from).toLocaleString() : "")));
    const bar = el("div", "bar");
    const fill = el("i", rate >= a.cap ? "bad" : rate >= 0.8 * a.cap ? "warn" : "");
    fill.style.width = Math.min(100, a.cap ? (100 * rate) / a.cap : 0) + "%";
    bar.append(fill);
    ab.append(bar);
    card.append(ab);

    const legend = el("div", "states");
    for (const s of STATES) {
      if (s === "logged_out" && !byState[s]) continue;
      const sp = el("span", "s-" + s, LABEL[s] + " " + byState[s]);
      sp.dataset.state = s;
      legend.append(sp);
    }
    card.append(legend);
    const grid = el("div", "grid");
    for (const ag of agents.slice().sort((x, y) => STATES.indexOf(x.state.state) - STATES.indexOf(y.state.state))) {
      const i = el("i", "s-" + ag.state.state);
      i.title = ag.agent + ": " + LABEL[ag.state.state] + (ag.call ? " · call " + ag.call : "") +
        (ag.state.reason ? " · " + ag.state.reason : "") + " · since " + new Date(ag.since).toLocaleTimeString();
      grid.append(i);
    }
    card.append(grid);

    const canvas = el("canvas");
    canvas.width = 560; canvas.height = 140;
    card.append(canvas);
    const lg = el("div", "legend");
    lg.innerHTML = "<b class=occ>occupancy</b> · <b class=ab>abandonment</b> against the <b class=cap>cap</b>, last 6 hours";
    card.append(lg);
    main.append(card);
    draw(canvas, history.filter((s) => s.campaign === id), a.cap);
  }
}

// Occupancy (0..1, left) and abandonment (0..2×cap, right) over time.
function draw(canvas, samples, cap) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, P = 4;
  g.clearRect(0, 0, W, H);
  if (samples.length < 2) {
    g.fillStyle = "#999"; g.font = "12px sans-serif";
    g.fillText("collecting samples (one every 10 s)…", 10, H / 2);
    return;
  }
  const t0 = new Date(samples[0].at).getTime(), t1 = new Date(samples[samples.length - 1].at).getTime();
  const x = (t) => P + ((W - 2 * P) * (t - t0)) / Math.max(1, t1 - t0);
  const abMax = Math.max(2 * cap, ...samples.map((s) => s.abandonment)) || 0.01;
  const line = (color, f, dash) => {
    g.strokeStyle = color; g.lineWidth = 1.5; g.setLineDash(dash || []);
    g.beginPath();
    samples.forEach((s, i) => {
      const px = x(new Date(s.at).getTime()), py = H - P - (H - 2 * P) * f(s);
      i ? g.lineTo(px, py) : g.moveTo(px, py);
    });
    g.stroke();
  };
  line("#1565c0", (s) => s.occupancy);
  line("#c62828", (s) => s.abandonment / abMax);
  line("#b35900", () => cap / abMax, [4, 3]);
}

async function refresh() {
  if (!token) return;
  try {
    const status = await api("/api/status");
    // The live point of the chart (the server keeps one every 10 s for 6 hours).
    for (const c of status.engine.campaigns) {
      const mine = status.engine.agents.filter((a) => (a.campaign === c.campaign || a.campaign === null) && a.state.state !== "logged_out");
      const busy = mine.filter((a) => a.state.state === "on_call").length;
      const a = c.abandonment;
      history.push({ at: status.at, campaign: c.campaign, occupancy: mine.length ? busy / mine.length : 0,
        abandonment: a.live_answers ? a.abandoned / a.live_answers : 0, cap: a.cap, lines_in_use: c.calls_in_flight });
    }
    if (history.length > 20000) history = history.slice(-20000);
    render(status);
  } catch (e) {
    if (token) $("telephony").textContent = "dialer unreachable: " + e.message;
  }
}

async function loadHistory() {
  if (!token) return;
  try { history = await api("/api/history"); } catch (_) {}
}

// One line a supervisor can read for an event.
function describe(name, data) {
  let v;
  try { v = JSON.parse(data); } catch (_) { return name + " " + data.slice(0, 160); }
  const e = v.event || v;
  const at = e.at ? new Date(e.at).toLocaleTimeString() : "";
  switch (name) {
    case "dialed": return at + " dialed " + e.number + " (record " + e.record + ", call " + e.call + ", " + e.campaign + ")";
    case "progress": return at + " call " + e.call + ": " + e.progress.state.replace("_", " ") + (e.progress.agent ? " with " + e.progress.agent : "");
    case "skipped": return at + " skipped record " + e.record + ": " + e.reason.reason.replace(/_/g, " ") + (e.reason.number ? " " + e.reason.number : "");
    case "agent_linked": return at + " " + e.agent + " took call " + e.call;
    case "agent_unlinked": return at + " " + e.agent + " left call " + e.call;
    case "agent_away": return at + " " + e.agent + (e.paused ? " paused: " + e.paused : " logged out");
    case "preview_offered": return at + " record " + e.record + " offered to " + e.agent;
    case "rejected": return at + " refused " + e.input + ": " + JSON.stringify(e.reason);
    case "record_finished": return at + " record " + e.record + " finished: " + String(e.reason).replace(/_/g, " ");
    case "telephony_down": return at + " telephone system down: " + e.reason;
    case "telephony_up": return at + " telephone system up";
    case "lost": return "missed " + v.lost + " events (they left the server's buffer)";
    default: return at + " " + name.replace(/_/g, " ");
  }
}

function tick(name, data) {
  const li = el("li", null, describe(name, data));
  const t = $("ticker");
  t.prepend(li);
  while (t.children.length > 30) t.lastChild.remove();
}

let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 300); }

// Server-sent events over fetch; reconnects with Last-Event-ID.
async function follow() {
  while (token) {
    try {
      const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const r = await fetch("/api/events", { headers });
      if (!r.ok) throw new Error(r.statusText);
      $("stream").className = "badge ok"; $("stream").textContent = "events: live";
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) lastEventId = line.slice(3).trim();
            else if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) { tick(name, data); soon(); }
        }
      }
    } catch (_) {}
    $("stream").className = "badge bad"; $("stream").textContent = "events: reconnecting";
    await new Promise((res) => setTimeout(res, 2000));
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("dialer-token", $("token").value.trim());
  token = sessionStorage.getItem("dialer-token");
  $("login").hidden = true;
  start();
});

function start() {
  loadHistory().then(refresh);
  follow();
}

takeToken();
if (token) start(); else askToken();
setInterval(refresh, 2000);
setInterval(loadHistory, 10000);
