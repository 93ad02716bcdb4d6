/* The console's link to alertd: the session token, the server clock, JSON calls and the live WebSocket feed. */
"use strict";
(function () {
  const STORE = "alertd.console.session";
  const listeners = { event: [], notification: [], ready: [], state: [], signedOut: [] };
  let session = null;      // {token, expires_at, session_expires_at, officer}
  let offsetMs = 0;        // server clock minus this PC's clock
  let socket = null;
  let retry = 0;
  let reconnectTimer = null;
  let renewTimer = null;
  let lastEventId = null;
  let wanted = false;

  function emit(name, value) { for (const fn of listeners[name]) fn(value); }
  function on(name, fn) { listeners[name].push(fn); }
  function now() { return Date.now() + offsetMs; }
  function syncClock(serverIso) {
    const server = Date.parse(serverIso);
    if (!Number.isNaN(server)) offsetMs = server - Date.now();
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (session) headers.Authorization = "Bearer " + session.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                     cache: "no-store", credentials: "omit" });
    } catch (err) {
      throw new ApiError(0, "network", String(err));
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      if (response.status === 401 && session && path !== "/console/api/session") endSession("session_ended");
      throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText);
    }
    return data;
  }

  function keep(result) {
    session = { token: result.token, expires_at: result.expires_at, session_expires_at: result.session_expires_at,
                officer: result.officer };
    syncClock(result.now);
    sessionStorage.setItem(STORE, JSON.stringify(session));
    scheduleRenew();
  }

  function scheduleRenew() {
    clearTimeout(renewTimer);
    if (!session) return;
    // Renew five minutes before the token expires (at once if it is already that close).
    const due = Date.parse(session.expires_at) - 5 * 60 * 1000 - now();
    renewTimer = setTimeout(renew, Math.max(1000, Math.min(due, 10 * 60 * 1000)));
  }

  async function renew() {
    if (!session) return;
    try {
      keep(await call("POST", "/console/api/session/renew"));
    } catch (err) {
      if (err.status !== 401) renewTimer = setTimeout(renew, 15000);
    }
  }

  async function signIn(username, password) {
    const result = await call("POST", "/console/api/session", { username, password });
    keep(result);
    return result.officer;
  }

  function restore() {
    try { session = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (_) { session = null; }
    if (session) scheduleRenew();
    return session;
  }

  function endSession(reason) {
    const had = session !== null;
    session = null;
    sessionStorage.removeItem(STORE);
    clearTimeout(renewTimer);
    disconnect();
    if (had) emit("signedOut", reason);
  }

  async function signOut() {
    try { await call("DELETE", "/console/api/session"); } catch (_) { /* signing out locally is enough */ }
    endSession("signed_out");
  }

  function connect() {
    wanted = true;
    if (!session || (socket && socket.readyState <= 1)) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}/v1/events?access_token=${encodeURIComponent(session.token)}`;
    if (lastEventId !== null) url += `&since=${lastEventId}`;
    emit("state", retry === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(url);
    socket = ws;
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (_) { return; }
      if (data.type === "ready") {
        retry = 0;
        emit("state", "live");
        emit("ready");
      } else if (data.type === "event" && data.event) {
        if (typeof data.event.id === "number") lastEventId = Math.max(lastEventId || 0, data.event.id);
        emit("event", data.event);
      } else if (data.type === "notification") {
        emit("notification", data);
      }
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      if (!wanted || !session) { emit("state", "offline"); return; }
      emit("state", "reconnecting");
      // Back off 0.5 s, 1 s, 2 s ... up to 10 s, with jitter so a restarted instance is not hit all at once.
      const delay = Math.min(10000, 500 * 2 ** retry) * (0.75 + Math.random() * 0.5);
      retry += 1;
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  function disconnect() {
    wanted = false;
    clearTimeout(reconnectTimer);
    if (socket) socket.close();
    socket = null;
  }

  /* Drop the socket as a network failure would (the console reconnects and catches up by itself). */
  function dropSocket() { if (socket) socket.close(); }

  window.Live = {
    on, now, syncClock, call, signIn, signOut, restore, connect, disconnect, dropSocket, ApiError,
    get session() { return session; },
    get lastEventId() { return lastEventId; },
    set lastEventId(value) { lastEventId = value; },
  };
})();
