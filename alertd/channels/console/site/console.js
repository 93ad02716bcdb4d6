/* The console: sign-in, the live dispatch list, the alert view, the region view, the alarm and the keys. */
"use strict";
(function () {
  const { t } = window.I18N;
  const Live = window.Live, Views = window.Views;
  const $ = (id) => document.getElementById(id);
  const ACTIVE = ["pending", "expired", "acknowledged", "en_route", "on_scene"];
  const DISPATCH_EVENTS = ["dispatched", "redispatched", "escalation_dispatched", "broadcast_dispatched"];

  const state = { dispatches: [], known: null, alarmed: new Set(), tiles: false, alertId: null, sound: null };
  let refreshTimer = null, alertTimer = null, regionTimer = null;

  /* ---- screens and routing ---- */
  function show(id) {
    for (const s of ["signin", "dispatches", "alert-view", "region-view", "drills-view"]) $(s).hidden = s !== id;
  }

  /* Every change of view puts focus where the officer's work continues, never on the page body: the list (or
     the card of the alert she just left), the alert's heading, the region's heading. */
  function route() {
    if (!Live.session) { show("signin"); $("bar").hidden = true; $("username").focus(); return; }
    $("bar").hidden = false;
    const hash = location.hash || "#/";
    const m = hash.match(/^#\/alert\/([0-9a-fA-F-]{36})$/);
    const left = state.alertId;
    state.alertId = m ? m[1] : null;
    if (m) { show("alert-view"); loadAlert(); $("alert-title").focus({ preventScroll: true }); }
    else if (hash === "#/region" && isSupervisor()) { show("region-view"); loadRegion(); $("region-title").focus(); }
    else if ((hash === "#/drills" || /^#\/drill\/[0-9a-fA-F-]{36}$/.test(hash)) && mayDrill()) {
      const drill = hash.startsWith("#/drill/") ? hash.slice(8) : null;
      show("drills-view"); window.Drills.show(drill);
      (drill ? $("drill-report-title") : $("drills-title")).focus();
    }
    else {
      show("dispatches"); renderList();
      const card = left && document.querySelector(`#dispatches .card[data-alert-id="${left}"]`);
      if (card) { card.focus({ preventScroll: true }); card.scrollIntoView({ block: "nearest" }); }
      else $("dispatches-title").focus();
    }
  }

  /* The skip link goes to the content of the view on screen, without touching the route. */
  document.querySelector("a.skip").addEventListener("click", (e) => {
    e.preventDefault();
    const view = ["dispatches", "alert-view", "region-view", "drills-view", "signin"].map($).find((v) => !v.hidden);
    const target = view && view.querySelector("h1");
    (target || $("main")).focus();
  });

  /* The sticky header's height, so focus and scrolling never leave a card under it (it wraps, the alarm grows it). */
  new ResizeObserver(() => {
    document.documentElement.style.setProperty("--bar-h", `${$("bar").hidden ? 0 : $("bar").offsetHeight}px`);
  }).observe($("bar"));

  function isSupervisor() { return Live.session && Live.session.officer.role === "supervisor"; }
  function mayDrill() { return Live.session && ["supervisor", "admin"].includes(Live.session.officer.role); }
  function drillShown() { return !$("drills-view").hidden; }
  function currentDrill() { return window.Drills.current ? window.Drills.current.drill_id : (location.hash.startsWith("#/drill/") ? location.hash.slice(8) : null); }

  function setLanguage(lang) {
    window.I18N.setLanguage(lang);
    $("lang").value = window.I18N.language;
    updateSoundButton();
    renderWho();
    showConnection();
    if (Live.session) {
      renderList(); if (state.alertId) loadAlert(); if (!$("region-view").hidden) loadRegion();
      if (drillShown()) window.Drills.show(currentDrill());
    }
  }

  /* ---- signed in ---- */
  function renderWho() {
    if (!Live.session) return;
    const o = Live.session.officer;
    $("who").textContent = `${o.username} · ${t("kind_" + (o.responder_kind || "police_post"))} ${o.responder_id}` +
      (o.role === "supervisor" ? ` · ${o.region}` : "");
    $("who").title = $("who").textContent;
  }

  function showConnection() {
    const s = state.connection || "offline";
    $("conn").textContent = s === "live" ? t("live") : s === "offline" ? t("offline") : t("reconnecting");
    $("conn").className = `conn conn-${s}`;
  }

  function start() {
    const o = Live.session.officer;
    setLanguage(o.language || "ru");
    $("nav-region").hidden = o.role !== "supervisor";
    $("nav-drills").hidden = !mayDrill();
    state.known = null;
    Live.connect();
    refresh();
    route();
  }

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = $("signin-error");
    error.textContent = "";
    $("signin-submit").disabled = true;
    $("signin-submit").textContent = t("signing_in");
    try {
      await Live.signIn($("username").value, $("password").value);
      $("password").value = "";
      start();
    } catch (err) {
      error.textContent = err.status === 401 ? t("wrong_credentials") : err.status === 429 ? t("too_many") :
        err.status === 0 ? t("network_error") : err.message;
      $("password").select();
    } finally {
      $("signin-submit").disabled = false;
      $("signin-submit").textContent = t("sign_in");
    }
  });

  for (const b of document.querySelectorAll("[data-lang]")) b.addEventListener("click", () => setLanguage(b.dataset.lang));

  $("lang").addEventListener("change", async () => {
    setLanguage($("lang").value);
    try { await Live.call("PATCH", "/console/api/me", { language: $("lang").value }); } catch (_) { /* kept locally */ }
  });

  $("signout").addEventListener("click", () => Live.signOut());

  Live.on("signedOut", (reason) => {
    state.dispatches = []; state.known = null; hideAlarm();
    $("dispatch-list").replaceChildren(); $("closed-list").replaceChildren();
    $("signin-error").textContent = reason === "session_ended" ? t("session_ended") : "";
    route();
  });

  Live.on("state", (s) => { state.connection = s; showConnection(); });
  Live.on("ready", () => { refresh(); if (state.alertId) loadAlert(); if (!$("region-view").hidden) loadRegion(); });
  Live.on("event", (e) => {
    scheduleRefresh();
    if (drillShown()) scheduleDrill();
    if (state.alertId && e.alert_id === state.alertId) scheduleAlert();
    if (!$("region-view").hidden) scheduleRegion();
  });
  Live.on("notification", () => { scheduleRefresh(); if (!$("region-view").hidden) scheduleRegion(); });

  /* ---- the dispatch list ---- */
  function scheduleRefresh() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 100); }

  async function refresh() {
    if (!Live.session) return;
    loadCaseload();
    try {
      const [list, me, notices] = await Promise.all([Live.call("GET", "/v1/dispatches"),
        Live.call("GET", "/console/api/me"), Live.call("GET", "/console/api/notices")]);
      Live.syncClock(me.now);
      $("notice-list").replaceChildren(...notices.items.map(Views.notice));
      $("my-notices").hidden = notices.items.length === 0;
      state.tiles = Boolean(me.tiles);
      state.dispatches = list.items;
      noticeNew(list.items);
      renderList();
    } catch (err) {
      if (err.status !== 401) console.warn("refresh failed", err.message);
    }
  }

  /* The people in the officer's care (as a caseworker): when each of their channels last proved it works. */
  async function loadCaseload() {
    try {
      const caseload = await Live.call("GET", "/console/api/caseload");
      $("people-list").replaceChildren(...caseload.items.map(Views.personChannels));
      $("my-people").hidden = caseload.items.length === 0;
    } catch (err) {
      if (err.status !== 401) console.warn("caseload failed", err.message);
    }
  }

  function rank(d) {
    return [d.duress ? 0 : 1, d.alert_status === "unanswered" ? 0 : 1, d.status === "pending" || d.status === "expired" ? 0 : 1,
            Date.parse(d.ack_deadline)];
  }
  function compare(a, b) {
    const x = rank(a), y = rank(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  }

  const actions = {
    async ack(d) { await act(d, "POST", `/v1/dispatches/${d.id}/ack`); },
    async status(d, status, note) { await act(d, "POST", `/v1/dispatches/${d.id}/status`, { status, note: note || undefined }); },
  };

  async function act(d, method, path, body) {
    try {
      await Live.call(method, path, body);
      if (state.alarmed.has(d.id)) { state.alarmed.delete(d.id); if (!state.alarmed.size) hideAlarm(); }
      await refresh();
      if (state.alertId === d.alert_id) {
        await loadAlert();
        const row = document.querySelector(`#alert-dispatches li[data-id="${d.id}"]`);
        if (row) { row.tabIndex = -1; row.focus(); }
        return;
      }
      const card = document.querySelector(`.card[data-id="${d.id}"]`);
      if (card) card.focus();
    } catch (err) {
      if (err.status !== 401) flash(t("action_failed", { msg: err.message }));
    }
  }

  function renderList() {
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".card");
    const focusId = focused ? focused.dataset.id : null;
    const open = (d) => ACTIVE.includes(d.status) && !(d.status === "expired" && !["open", "unanswered"].includes(d.alert_status));
    const codes = new Map();  // person -> codes of her open dispatches here: repeated alerts read as hers
    for (const d of state.dispatches.filter(open)) if (d.person_id) codes.set(d.person_id, [...(codes.get(d.person_id) || []), d]);
    const marked = state.dispatches.map((d) => {
      const others = (codes.get(d.person_id) || []).filter((x) => x.alert_id !== d.alert_id).map((x) => x.code);
      return others.length ? { ...d, same_person: others } : d;
    });
    const active = marked.filter(open).sort(compare);
    const closed = marked.filter((d) => !open(d));
    const cards = new Map([...document.querySelectorAll("#dispatch-list > .card, #closed-list > .card")]
      .map((c) => [c.dataset.id, c]));
    patchList($("dispatch-list"), active.map((d) => cardFor(d, cards.get(d.id))));
    patchList($("closed-list"), closed.map((d) => cardFor(d, cards.get(d.id))));
    $("dispatch-empty").hidden = active.length > 0;
    if (focusId && !document.activeElement.closest(".card")) {
      const again = document.querySelector(`.card[data-id="${focusId}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  /* A card whose resolve form is open holds what an officer is typing: a refresh never moves it, replaces it or
     takes its focus; it is brought up to date around the form and takes its place again once the form closes. */
  function pinned(card) { return Boolean(card && card.querySelector("form.resolve:not([hidden])")); }

  /* The card for a dispatch: the one on screen when nothing changed, updated in place when something did. */
  function cardFor(d, old) {
    const sig = window.I18N.language + JSON.stringify(d);  // a new language redraws the card
    if (old && old.dataset.sig === sig) return old;
    const fresh = Views.dispatchCard(d, actions);
    fresh.dataset.sig = sig;
    if (!old) return fresh;
    const form = old.querySelector("form.resolve:not([hidden])");
    for (const name of ["class", "aria-label"]) old.setAttribute(name, fresh.getAttribute(name));
    Object.assign(old.dataset, fresh.dataset);
    const parts = [...fresh.children].map((c) => (form && c.matches("form.resolve") ? form : c));
    for (const c of [...old.children]) if (!parts.includes(c)) c.remove();
    parts.forEach((p, i) => { if (old.children[i] !== p) old.insertBefore(p, old.children[i] || null); });
    return old;
  }

  /* Put the cards in order, moving only what must move and never a pinned card; drop cards no longer listed. */
  function patchList(list, nodes) {
    const wanted = new Set(nodes);
    for (const c of [...list.children]) if (!wanted.has(c) && !pinned(c)) c.remove();
    let cursor = null;
    for (const node of nodes) {
      if (pinned(node) && node.parentNode && node.parentNode !== list) continue;  // stays in the other list for now
      if (pinned(node) && node.parentNode === list) { cursor = node; continue; }
      const at = cursor ? cursor.nextSibling : list.firstChild;
      if (at !== node) list.insertBefore(node, at);
      cursor = node;
    }
  }

  /* ---- the alarm ---- */
  function noticeNew(items) {
    const pending = items.filter((d) => d.status === "pending");
    const first = state.known === null;
    const fresh = pending.filter((d) => first || !state.known.has(d.id));
    state.known = new Set(items.map((d) => d.id));
    for (const d of fresh) state.alarmed.add(d.id);
    for (const id of [...state.alarmed]) if (!pending.some((d) => d.id === id)) state.alarmed.delete(id);
    if (fresh.length) raiseAlarm(fresh[0]);
    else if (!state.alarmed.size) hideAlarm();
  }

  function raiseAlarm(d) {
    $("alarm-text").textContent = (d.drill ? `${t("drill")} · ` : "") + t("new_dispatch", { code: d.code, kind: t("kind_" + d.kind) }) +
      (d.duress ? ` · ${t("duress")}` : "") + (d.alert_status === "unanswered" ? ` · ${t("unanswered")}` : "");
    $("alarm").hidden = false;
    $("alarm").dataset.alertId = d.alert_id;
    document.body.classList.add("alarming");
    document.title = "‼ " + t("title") + " · alertd";
    beep(d.duress ? 5 : 3);
  }

  function hideAlarm() {
    $("alarm").hidden = true;
    document.body.classList.remove("alarming");
    document.title = t("title") + " · alertd";
  }

  $("alarm-dismiss").addEventListener("click", () => { state.alarmed.clear(); hideAlarm(); });
  $("alarm-open").addEventListener("click", () => { location.hash = `#/alert/${$("alarm").dataset.alertId}`; hideAlarm(); });

  function flash(text) {
    $("alarm-text").textContent = text;
    $("alarm").hidden = false;
  }

  /* Browsers only let a page play sound after a click: the officer enables it once per page load. */
  function updateSoundButton() {
    $("sound").textContent = state.sound ? t("sound_on") : t("sound_enable");
    $("sound").setAttribute("aria-pressed", state.sound ? "true" : "false");
  }

  $("sound").addEventListener("click", async () => {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    state.sound = state.sound || new Ctx();
    await state.sound.resume();
    updateSoundButton();
    beep(1);
  });

  function beep(times) {
    const ctx = state.sound;
    if (!ctx || ctx.state !== "running") return;
    for (let i = 0; i < times; i++) {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      const at = ctx.currentTime + i * 0.5;
      osc.frequency.setValueAtTime(880, at);
      osc.frequency.setValueAtTime(660, at + 0.2);
      gain.gain.setValueAtTime(0.3, at);
      gain.gain.exponentialRampToValueAtTime(0.001, at + 0.4);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.4);
    }
  }

  /* ---- the alert view ---- */
  function scheduleAlert() { clearTimeout(alertTimer); alertTimer = setTimeout(loadAlert, 200); }

  /* Leaflet (150 KB) loads the first time an alert is opened, not with the sign-in page: on a rural link the list
     comes first. Without it (it failed to load) the alert view still shows everything but the map. */
  let leaflet = null;
  function loadLeaflet() {
    if (window.L) return Promise.resolve();
    if (!leaflet) {
      const v = new URL(document.querySelector('script[src*="console.js"]').src).searchParams.get("v") || "";
      leaflet = new Promise((resolve) => {
        const css = Object.assign(document.createElement("link"), { rel: "stylesheet", href: `assets/vendor/leaflet/leaflet.css?v=${v}` });
        const js = Object.assign(document.createElement("script"), { src: `assets/vendor/leaflet/leaflet.js?v=${v}` });
        js.onload = resolve;
        js.onerror = () => { leaflet = null; resolve(); };
        document.head.append(css, js);
      });
    }
    return leaflet;
  }

  async function loadAlert() {
    const id = state.alertId;
    if (!id) return;
    $("alert-error").textContent = "";
    try {
      const [alert] = await Promise.all([Live.call("GET", `/console/api/alerts/${id}`), loadLeaflet()]);
      if (state.alertId !== id) return;
      Live.syncClock(alert.now);
      $("alert-view").classList.remove("missing");
      Views.alertView(alert, state.tiles, { responderId: Live.session.officer.responder_id, actions });
    } catch (err) {
      if (err.status === 404) {
        $("alert-view").classList.add("missing");
        $("alert-title").textContent = t("alert_title", { id: id.slice(0, 8) });
        $("alert-error").textContent = t("alert_not_found");
        for (const x of ["alert-summary", "alert-dispatches", "timeline"]) $(x).replaceChildren();
      } else if (err.status !== 401) {
        $("alert-error").textContent = err.message;
      }
    }
  }

  /* ---- the drills page: its report follows the live feed (acknowledgements, escalations) ---- */
  let drillTimer = null;
  function scheduleDrill() { clearTimeout(drillTimer); drillTimer = setTimeout(() => window.Drills.show(currentDrill()), 300); }

  /* ---- the region view ---- */
  function scheduleRegion() { clearTimeout(regionTimer); regionTimer = setTimeout(loadRegion, 200); }

  async function loadRegion() {
    try {
      const view = await Live.call("GET", "/console/api/region");
      Live.syncClock(view.now);
      Views.regionView(view);
    } catch (err) {
      if (err.status !== 401) console.warn("region view failed", err.message);
    }
  }

  /* ---- keys ----
     Single-key actions work only on a focused card itself (not a button, link or form inside it), never while a
     note form is open anywhere, and can be turned off: a stray letter typed into the wrong place changes nothing. */
  const KEYS_SETTING = "alertd.console.keys";
  function keysOn() { return localStorage.getItem(KEYS_SETTING) !== "off"; }
  function showKeys() {
    $("keys-on").checked = keysOn();
    $("keys-hint").hidden = !keysOn();
  }
  $("keys-on").addEventListener("change", () => { localStorage.setItem(KEYS_SETTING, $("keys-on").checked ? "on" : "off"); showKeys(); });
  showKeys();

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !Live.session || !keysOn()) return;
    if (e.target.closest && e.target.closest("input, textarea, select, [contenteditable]")) return;
    if (document.querySelector("form.resolve:not([hidden])")) return;
    const cards = [...document.querySelectorAll("#dispatches:not([hidden]) .card")];
    const card = e.target.classList && e.target.classList.contains("card") ? e.target : null;
    // j, k and r also work from a heading or the page itself, never from a control (a stray letter there is noise)
    const nowhere = !card && !(e.target.closest && e.target.closest("a, button, summary, .card, #bar"));
    const d = card && state.dispatches.find((x) => x.id === card.dataset.id);
    const move = (step) => {
      if (!cards.length) return;
      const i = card ? cards.indexOf(card) : -1;
      const next = cards[Math.max(0, Math.min(cards.length - 1, i + step))];
      next.focus({ preventScroll: true });
      next.scrollIntoView({ block: "nearest" });  // honours scroll-padding-top: never under the sticky header
      e.preventDefault();
    };
    if ((e.key === "j" && (card || nowhere)) || (e.key === "ArrowDown" && card)) move(1);
    else if ((e.key === "k" && (card || nowhere)) || (e.key === "ArrowUp" && card)) move(-1);
    else if (e.key === "a" && d) actions.ack(d);
    else if (e.key === "e" && d) actions.status(d, "en_route");
    else if (e.key === "s" && d) actions.status(d, "on_scene");
    else if (e.key === "Enter" && d) location.hash = `#/alert/${d.alert_id}`;
    else if (e.key === "Escape") location.hash = "#/";
    else if (e.key === "r" && isSupervisor() && (card || nowhere)) location.hash = "#/region";
  });

  window.addEventListener("hashchange", route);
  setInterval(() => Views.tick(), 1000);
  // Re-read the server clock and the lists now and then: the database is the truth, the feed only wakes us.
  setInterval(() => { if (Live.session) { refresh(); if (!$("region-view").hidden) loadRegion(); } }, 30000);

  window.I18N.setLanguage(navigator.language && navigator.language.startsWith("kk") ? "kk" :
    navigator.language && navigator.language.startsWith("en") ? "en" : "ru");
  $("lang").value = window.I18N.language;
  if (Live.restore()) start(); else route();
  window.Console = { state, refresh };
})();
