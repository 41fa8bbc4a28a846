// The chat page: one WebSocket to /agent/{session}, steps rendered as they stream in.
// Survives reloads and dropped connections: the transcript and the last event id live in
// sessionStorage, and the socket reconnects with ?last_event_id= so the server replays what was missed.
// The API key is sent in a first {"type": "auth"} frame, never in the URL.
"use strict";

const STEP_TYPES = new Set(["thinking", "action", "observation", "result", "error", "user"]);
const LABELS = { user: "You", thinking: "Thinking", action: "Action", observation: "Observation", result: "Result", error: "Error" };
const MAX_STORED = 500;
const store = window.sessionStorage;

const el = (id) => document.getElementById(id);
const transcript = el("transcript");
const connection = el("connection");
const notice = el("notice");

let sessionId = localStorage.getItem("agent.session") || newSessionId();
let apiKey = store.getItem("agent.apiKey") || "";
let socket = null;
let retryMs = 500;
let retryTimer = null;
let pending = [];          // messages typed while disconnected, sent on (re)connect
let stopped = false;       // the server refused our credentials: wait for a new key
const seen = new Set();    // event ids already shown (a replay after reconnect never duplicates)

function newSessionId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  const id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  localStorage.setItem("agent.session", id);
  return id;
}

const eventsKey = () => `agent.events.${sessionId}`;
const lastKey = () => `agent.last.${sessionId}`;

function storedEvents() {
  try { return JSON.parse(store.getItem(eventsKey()) || "[]"); } catch { return []; }
}

function remember(frame) {
  const events = storedEvents();
  events.push(frame);
  store.setItem(eventsKey(), JSON.stringify(events.slice(-MAX_STORED)));
  if (frame.id) store.setItem(lastKey(), frame.id);
}

function setConnection(text, kind) {
  connection.textContent = text;
  connection.className = "connection " + (kind || "");
}

function showNotice(sentence) {
  notice.textContent = sentence;
  notice.hidden = !sentence;
}

function describeError(content) {
  if (content && typeof content === "object") {
    if (content.message) return sentence(content.message);
    if (content.code === "rate_limited") return `Too many messages: wait ${Math.ceil(content.retry_after || 1)} s and send again.`;
    if (content.code) return sentence(`The agent stopped: ${content.code.replace(/_/g, " ")}`);
  }
  return sentence(String(content || "Something went wrong"));
}

function sentence(text) {
  const t = String(text).trim();
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : capital + ".";
}

function render(frame) {
  const item = document.createElement("li");
  item.className = `chunk ${frame.type}`;
  item.dataset.type = frame.type;
  if (frame.id) item.dataset.eventId = frame.id;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = LABELS[frame.type] || frame.type;
  item.append(label);
  const c = frame.content;
  if (frame.type === "action") {
    const code = document.createElement("code");
    code.textContent = `${c.tool}(${JSON.stringify(c.arguments)})`;
    item.append(code);
  } else if (frame.type === "observation") {
    const pre = document.createElement("pre");
    pre.textContent = (c.ok === false ? "failed: " : "") + (typeof c.output === "string" ? c.output : JSON.stringify(c.output));
    item.append(pre);
  } else if (frame.type === "error") {
    item.append(document.createTextNode(describeError(c)));
  } else {
    item.append(document.createTextNode(typeof c === "string" ? c : JSON.stringify(c)));
  }
  transcript.append(item);
  item.scrollIntoView({ block: "end" });
}

function renderStatus(text) {
  const item = document.createElement("li");
  item.className = "chunk status";
  item.dataset.type = "status";
  item.textContent = text;
  transcript.append(item);
}

function onFrame(frame) {
  if (frame.type === "heartbeat") return;
  if (frame.type === "authenticated") { setConnection("connected", "open"); showNotice(""); return; }
  if (frame.type === "accepted") return;
  if (frame.type === "status") {
    if (frame.id) store.setItem(lastKey(), frame.id);
    if (frame.content && frame.content !== "running") renderStatus(`run ${frame.content}`);
    return;
  }
  if (!STEP_TYPES.has(frame.type)) return;
  if (frame.id) {
    if (seen.has(frame.id)) return;
    seen.add(frame.id);
  }
  if (frame.type === "error" && !frame.task_id) {
    // about the connection or the frame we sent, not a step of a run
    const code = frame.content && frame.content.code;
    showNotice(describeError(frame.content) + (code === "unauthorized" || code === "forbidden" ? " Enter the API key above." : ""));
    if (code !== "unauthorized" && code !== "forbidden") { render(frame); remember(frame); }
    return;
  }
  render(frame);
  remember(frame);
}

function connect() {
  clearTimeout(retryTimer);
  if (socket) { socket.onclose = null; socket.close(); }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const last = store.getItem(lastKey());
  const query = last ? `?last_event_id=${encodeURIComponent(last)}` : "";
  setConnection(last ? "resuming…" : "connecting…");
  const ws = new WebSocket(`${scheme}://${location.host}/agent/${encodeURIComponent(sessionId)}${query}`);
  socket = ws;
  ws.onopen = () => {
    retryMs = 500;
    if (apiKey) ws.send(JSON.stringify({ type: "auth", api_key: apiKey }));
    else setConnection("connected", "open");
    const queued = pending;
    pending = [];
    queued.forEach((text) => ws.send(JSON.stringify({ message: text })));
  };
  ws.onmessage = (event) => {
    try { onFrame(JSON.parse(event.data)); } catch (err) { console.error("bad frame", err); }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    if (event.code === 4401 || event.code === 4403) {
      stopped = true;
      setConnection("needs API key", "closed");
      el("api-key").focus();
      return;
    }
    setConnection("reconnecting…", "closed");
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

function send(text) {
  const entry = { type: "user", content: text };
  render(entry);
  remember(entry);
  if (socket && socket.readyState === WebSocket.OPEN && !stopped) socket.send(JSON.stringify({ message: text }));
  else pending.push(text);
}

el("message-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const box = el("message");
  const text = box.value.trim();
  if (!text) return;
  box.value = "";
  send(text);
});

el("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    el("message-form").requestSubmit();
  }
});

el("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = el("api-key").value.trim();
  if (apiKey) store.setItem("agent.apiKey", apiKey); else store.removeItem("agent.apiKey");
  stopped = false;
  showNotice("");
  connect();
});

el("new-session").addEventListener("click", () => {
  sessionId = newSessionId();
  el("session-id").textContent = sessionId;
  transcript.replaceChildren();
  seen.clear();
  connect();
});

el("session-id").textContent = sessionId;
el("api-key").value = apiKey;
for (const frame of storedEvents()) {
  if (frame.id) seen.add(frame.id);
  render(frame);
}
connect();
