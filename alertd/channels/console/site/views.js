/* Rendering: dispatch cards, the alert view with its map, the supervisor's region view. Text only, never HTML. */
"use strict";
(function () {
  const t = (...args) => window.I18N.t(...args);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
  }

  function clockTime(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString(window.I18N.language === "kk" ? "kk-KZ" : window.I18N.language, { hour12: false });
  }

  function shortId(id) { return String(id || "").slice(0, 8); }
  function channelName(channel) { return window.I18N.has("ch_" + channel) ? t("ch_" + channel) : String(channel || ""); }

  function locationText(loc) {
    if (!loc) return t("no_location");
    const acc = loc.accuracy_m === null || loc.accuracy_m === undefined ? "" : " " + t("accuracy", { m: Math.round(loc.accuracy_m) });
    return `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}${acc} (${loc.source})`;
  }

  /* The time texts of a card or row: refreshed every second without re-rendering (focus stays put). */
  function timeText(node) {
    const now = window.Live.now();
    const { created, deadline, acked, status } = node.dataset;
    if (node.classList.contains("age")) return t("age", { t: duration(now - Date.parse(created)) });
    if (acked) return t("acked_at", { t: duration(now - Date.parse(acked)) });
    if (status !== "pending" && status !== "expired") return "";
    const left = Date.parse(deadline) - now;
    node.classList.toggle("overdue", left < 0);
    node.classList.toggle("soon", left >= 0 && left < 30000);
    return left >= 0 ? t("countdown", { t: duration(left) }) : t("overdue", { t: duration(-left) });
  }

  function tick(root) {
    for (const node of (root || document).querySelectorAll(".age, .countdown")) {
      const text = timeText(node);
      if (node.textContent !== text) node.textContent = text;
    }
  }

  function badges(d) {
    const out = [];
    if (d.drill) out.push(el("span", { class: "badge drill" }, t("drill")));  // first: nobody may take it for real
    if (d.duress) out.push(el("span", { class: "badge duress" }, t("duress")));
    if (d.alert_status === "unanswered") out.push(el("span", { class: "badge unanswered" }, t("unanswered")));
    if (d.priority === "high" && !d.duress) out.push(el("span", { class: "badge high" }, t("high")));
    if (d.attempt > 1) out.push(el("span", { class: "badge muted" }, t("escalation", { n: d.attempt - 1 })));
    if (d.broadcast) out.push(el("span", { class: "badge muted" }, t("broadcast")));
    return out;
  }

  /* The buttons an officer acts with, and the "Resolved…" note form: on a card and in the alert view alike. */
  function dispatchActions(d, actions, scope) {
    const canAck = d.status === "pending" || d.status === "expired";
    const next = { pending: 0, expired: 0, acknowledged: 1, en_route: 2, on_scene: 3 }[d.status];
    const live = next !== undefined;
    const noteId = `note-${scope}-${d.id}`;
    const resolveForm = el("form", { class: "resolve", hidden: true, onsubmit: (e) => {
      e.preventDefault();
      resolveForm.hidden = true;  // closed before the refresh that follows, so the resolved card can move
      actions.status(d, "resolved", resolveForm.querySelector("textarea").value.trim() || null);
    } },
      el("label", { for: noteId }, t("note")),
      el("textarea", { id: noteId, rows: "2", maxlength: "2000" }),
      el("div", { class: "row" },
        el("button", { type: "submit", class: "primary" }, t("confirm_resolve")),
        el("button", { type: "button", onclick: () => { resolveForm.hidden = true; } }, t("cancel"))));
    const buttons = el("div", { class: "card-actions" },
      canAck && el("button", { type: "button", class: "primary act-ack", onclick: () => actions.ack(d) }, t("ack")),
      live && next <= 1 && el("button", { type: "button", class: "act-en_route", onclick: () => actions.status(d, "en_route") }, t("en_route")),
      live && next <= 2 && el("button", { type: "button", class: "act-on_scene", onclick: () => actions.status(d, "on_scene") }, t("on_scene")),
      live && el("button", { type: "button", class: "act-resolve", onclick: () => {
        resolveForm.hidden = false; resolveForm.querySelector("textarea").focus();
      } }, t("resolve")),
      scope === "card" && el("a", { href: `#/alert/${d.alert_id}`, class: "button act-open" }, t("open_alert")));
    return [buttons, resolveForm];
  }

  function dispatchCard(d, actions) {
    const who = [];
    if (d.channel) who.push(`${t("channel")}: ${channelName(d.channel)}`);
    if (d.person_id) who.push(`${t("person")} ${d.person_id}`);
    const card = el("li", {
      class: ["card", `st-${d.status}`, d.duress ? "is-duress" : "", d.alert_status === "unanswered" ? "is-unanswered" : "",
              d.drill ? "is-drill" : ""].join(" "),
      tabindex: "0", dataset: { id: d.id, alertId: d.alert_id, status: d.status, person: d.person_id || "" },
      // Read out as the officer sees it: badges, kind, code, status, the countdown, who and where.
      "aria-labelledby": `head-${d.id} times-${d.id} who-${d.id} loc-${d.id}`,
    },
      el("div", { class: "card-head", id: `head-${d.id}` },
        ...badges(d),
        d.repeats > 0 && el("span", { class: "badge muted repeats" }, t("repeats", { n: d.repeats })),
        d.same_person && el("span", { class: "badge muted same-person" }, t("same_person", { codes: d.same_person.join(", ") })),
        el("span", { class: "kind" }, t("kind_" + d.kind)),
        el("span", { class: "code" }, `${t("code")} ${d.code}`),
        el("span", { class: "status" }, t("status_" + d.status), d.late_ack ? ` (${t("late")})` : "")),
      el("div", { class: "card-times", id: `times-${d.id}` },
        el("span", { class: "age", dataset: { created: d.created_at } }),
        el("span", { class: "countdown", dataset: { deadline: d.ack_deadline, acked: d.acknowledged_at || "", status: d.status } })),
      el("div", { class: "card-who", id: `who-${d.id}` }, who.join(" · ")),
      el("div", { class: "card-loc", id: `loc-${d.id}` }, `${t("location")}: ${locationText(d.location)}`),
      d.place ? el("div", { class: "card-place", id: `place-${d.id}` }, `${t("near")}: ${placeText(d.place)}`) : null,
      ...dispatchActions(d, actions, "card"));
    tick(card);
    return card;
  }

  /* "14 km NE of Karaozek" in the console's language (the server renders every language: `texts`). */
  function placeText(p) { return (p.texts && p.texts[window.I18N.language]) || p.text; }
  function placeName(p) {
    const lang = window.I18N.language;
    return (lang === "kk" && (p.name_kk || p.name_ru)) || (lang === "ru" && p.name_ru) || p.asciiname || p.name;
  }

  /* ---- the alert view ---- */
  let map = null, layers = null, grid = null, placeLayer = null, placeAsk = 0;

  function gridStep(span) {
    for (const step of [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]) if (span / step <= 8) return step;
    return 20;
  }

  /* A text label on the map: a DOM node of its own (never HTML from a string), sized by the stylesheet. */
  function label(at, text, className, anchor) {
    const node = el("span", { class: className }, text);
    return L.marker(at, { icon: L.divIcon({ html: node, className: "map-label", iconSize: null, iconAnchor: anchor }),
                          interactive: false, keyboard: false });
  }

  function degrees(value, step, pos, neg) {
    const digits = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
    return `${Math.abs(value).toFixed(digits)}°${value < 0 ? neg : pos}`;
  }

  /* The coordinate grid with its labels (latitudes along the west edge, longitudes along the south edge): without
     tiles it is what makes the map readable. */
  function drawGrid() {
    grid.clearLayers();
    const b = map.getBounds();
    const step = gridStep(Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest()));
    const first = (v) => Math.ceil(v / step - 1e-9) * step;
    for (let lat = first(b.getSouth()); lat <= b.getNorth(); lat += step) {
      L.polyline([[lat, b.getWest() - 1], [lat, b.getEast() + 1]], { className: "grid", interactive: false }).addTo(grid);
      label([lat, b.getWest()], degrees(lat, step, "N", "S"), "grid-label grid-lat", [-2, 14]).addTo(grid);
    }
    for (let lon = first(b.getWest()); lon <= b.getEast(); lon += step) {
      L.polyline([[b.getSouth() - 1, lon], [b.getNorth() + 1, lon]], { className: "grid", interactive: false }).addTo(grid);
      label([b.getSouth(), lon], degrees(lon, step, "E", "W"), "grid-label grid-lon", [-2, 30]).addTo(grid);
    }
  }

  /* Named places inside the view (the server's gazetteer, the most populous first); a late answer for a view
     already left is dropped, a failed one leaves the map as it is. */
  async function drawPlaces() {
    const ask = ++placeAsk;
    let found;
    try {
      const b = map.getBounds(), box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
      found = await window.Live.call("GET", `/console/api/places?bbox=${box.map((v) => v.toFixed(5)).join(",")}`);
    } catch (_) { return; }
    if (ask !== placeAsk) return;
    placeLayer.clearLayers();
    for (const p of found.items) {
      L.circleMarker([p.lat, p.lon], { radius: 3, className: "place", interactive: false }).addTo(placeLayer);
      label([p.lat, p.lon], placeName(p), "place-label", [-5, 7]).addTo(placeLayer);
    }
    document.getElementById("map-credit").textContent = found.items.length ? t("places_credit") : "";
  }

  function onMove() { drawGrid(); drawPlaces(); }

  function ensureMap(tiles) {
    if (map || typeof L === "undefined") return;
    map = L.map("map", { zoomControl: true, attributionControl: tiles, keyboard: true, preferCanvas: false });
    if (tiles) {
      L.tileLayer("/console/tiles/{z}/{x}/{y}.png", { maxZoom: 18, errorTileUrl: "data:image/gif;base64,R0lGODlhAQABAAAAACw=" }).addTo(map);
    }
    grid = L.layerGroup().addTo(map);
    placeLayer = L.layerGroup().addTo(map);
    layers = L.layerGroup().addTo(map);
    L.control.scale({ metric: true, imperial: false, position: "bottomright" }).addTo(map);  // the left edge: degrees
    map.on("moveend", onMove);
  }

  /* A marker's name, for the tooltip and for screen readers (an SVG path has none of its own). */
  function named(marker, text) {
    marker.bindTooltip(text);
    const name = () => {
      const node = marker.getElement();
      if (node) { node.setAttribute("role", "img"); node.setAttribute("aria-label", text); }
    };
    marker.on("add", name);  // a map without a view yet draws its layers later
    name();
    return marker;
  }

  function drawMap(alert, tiles) {
    ensureMap(tiles);
    document.getElementById("map-note").textContent = tiles ? "" : t("map_no_tiles");
    if (!map) return;
    layers.clearLayers();
    const points = [];
    const trail = (alert.locations || []).map((l) => [l.lat, l.lon]);
    if (trail.length > 1) L.polyline(trail, { className: "trail" }).addTo(layers);
    for (const l of alert.locations || []) {
      named(L.circleMarker([l.lat, l.lon], { radius: 3, className: "trail-point" }).addTo(layers),
            `${t("legend_trail")}: ${clockTime(l.fix_time)} ${locationText(l)}`);
      points.push([l.lat, l.lon]);
    }
    if (alert.location) {
      const c = [alert.location.lat, alert.location.lon];
      if (alert.location.accuracy_m) L.circle(c, { radius: alert.location.accuracy_m, className: "accuracy" }).addTo(layers);
      named(L.circleMarker(c, { radius: 8, className: "best" }).addTo(layers), `${t("legend_best")}: ${locationText(alert.location)}`);
      points.push(c);
    }
    for (const r of alert.responders || []) {
      named(L.circleMarker([r.lat, r.lon], { radius: 7, className: `responder k-${r.kind}` }).addTo(layers),
            `${t("kind_" + r.kind)}: ${r.name} (${r.id})`);
      points.push([r.lat, r.lon]);
    }
    map.invalidateSize();
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 15 });
    else map.setView([48, 68], 5);
    onMove();
  }

  function eventText(e) {
    const d = e.data || {};
    const parts = [t("ev_" + e.type)];
    if (e.type === "status" && d.status) parts.push(t("status_" + d.status));
    if (d.kind) parts.push(t("kind_" + d.kind));
    if (e.type === "repeated" && d.channel) parts.push(channelName(d.channel));
    if (e.responder_id) parts.push(e.responder_id);
    if (d.code) parts.push(`${t("code")} ${d.code}`);
    if (d.to) parts.push(`→ ${d.to}`);
    if (d.note) parts.push(`“${d.note}”`);
    return parts.join(" · ");
  }

  function alertView(alert, tiles, mine) {
    document.getElementById("alert-title").textContent = (alert.drill ? `${t("drill")}: ` : "") + t("alert_title", { id: shortId(alert.alert_id) });
    const summary = document.getElementById("alert-summary");
    summary.replaceChildren(...[  // a missing part is left out (replaceChildren would write "null")
      alert.drill ? el("dt", {}, t("drill_kind")) : null, alert.drill ? el("dd", {}, el("span", { class: "badge drill" }, t("drill"))) : null,
      el("dt", {}, t("status")), el("dd", {}, alert.status === "unanswered" ? el("span", { class: "badge unanswered" }, t("unanswered")) : alert.status),
      el("dt", {}, t("priority")), el("dd", {}, alert.duress ? el("span", { class: "badge duress" }, t("duress")) : alert.priority),
      alert.person_id ? el("dt", {}, t("person")) : null, alert.person_id ? el("dd", { class: "mono" }, alert.person_id) : null,
      el("dt", {}, t("channel")), el("dd", {}, channelName(alert.channel)),
      el("dt", {}, t("location")), el("dd", { class: "mono" }, locationText(alert.location)),
      alert.place ? el("dt", {}, t("near")) : null, alert.place ? el("dd", { id: "alert-place" }, placeText(alert.place)) : null,
      alert.channels ? el("dt", {}, t("channels_proven")) : null, alert.channels ? el("dd", { id: "alert-channels" }, channelsList(alert.channels)) : null,
    ].filter(Boolean));
    const list = document.getElementById("alert-dispatches");
    const typing = list.querySelector("form.resolve:not([hidden])");  // a note being typed survives a reload
    if (typing) return tick(document.getElementById("alert-view"));
    // A reload (the live feed) keeps focus on the same row, or the same button in it, instead of dropping it.
    const active = document.activeElement && list.contains(document.activeElement) ? document.activeElement : null;
    const focusRow = active && active.closest("li") ? active.closest("li").dataset.id : null;
    const focusButton = active && active.matches("button") ? [...active.classList].find((c) => c.startsWith("act-")) : null;
    list.replaceChildren(...alert.dispatches.map((d) => el("li", { class: `st-${d.status}`, dataset: { id: d.id, status: d.status } },
      el("span", { class: "kind" }, t("kind_" + d.kind)), " ", el("span", { class: "mono" }, d.responder_id), " · ",
      el("span", { class: "status" }, t("status_" + d.status)), " · ", `${t("code")} ${d.code}`, " ",
      el("span", { class: "countdown", dataset: { deadline: d.ack_deadline, acked: d.acknowledged_at || "", status: d.status } }),
      mine && d.responder_id === mine.responderId ? dispatchActions({ ...d, alert_id: alert.alert_id }, mine.actions, "alert") : null)));
    if (focusRow) {
      const row = list.querySelector(`li[data-id="${focusRow}"]`);
      const target = row && ((focusButton && row.querySelector(`.${focusButton}`)) || row);
      if (target) { if (target === row) row.tabIndex = -1; target.focus({ preventScroll: true }); }
    }
    document.getElementById("timeline").replaceChildren(...alert.events.map((e) => el("li", { class: `ev ev-${e.type}`, dataset: { type: e.type } },
      el("time", { datetime: e.at }, clockTime(e.at)), " ", eventText(e))));
    tick(document.getElementById("alert-view"));
    drawMap(alert, tiles);
  }

  /* ---- the supervisor's region view ---- */
  function panel(id, title, items, row) {
    return el("section", { class: "panel", id: `panel-${id}`, "aria-label": title },
      el("h2", {}, title, " ", el("span", { class: "count" }, String(items.length))),
      items.length ? el("ul", { class: "plain" }, items.map(row)) : el("p", { class: "empty" }, t("none")));
  }

  function alertRow(a) {
    return el("li", { class: a.drill ? "is-drill" : a.duress ? "is-duress" : "" },
      el("a", { href: `#/alert/${a.id}` }, shortId(a.id)), " ", ...badges({ drill: a.drill, duress: a.duress, alert_status: a.status, priority: a.priority }),
      " ", el("span", { class: "mono" }, a.person_id), " · ", channelName(a.channel), " · ",
      el("span", { class: "age", dataset: { created: a.created_at } }),
      a.pending ? ` · ${t("pending_n", { n: a.pending })}` : "", a.missed ? ` · ${t("missed_n", { n: a.missed })}` : "");
  }

  function templateName(template) {
    const key = "tpl_" + template;
    return window.I18N.has(key) ? t(key) : template;
  }

  /* A notice to a supervisor or a caseworker: what, when, about which alert; the payload's ids, never contacts. */
  const NOTICE_FIELDS = {
    code: (v) => `${t("code")} ${v}`,
    kind: (v) => t("kind_" + v),
    responder_id: (v) => `${t("responder")} ${v}`,
    device_id: (v, p) => `${p.channel && p.channel !== "button" ? t("device") : t("button")} ${v}`,
    battery: (v) => t("battery", { p: Math.round(Number(v) * 100) }),
    issue: (v) => (window.I18N.has("issue_" + v) ? t("issue_" + v) : String(v)),
    sent_to: (v) => t("sent_to", { n: v }),
    reason: (v) => (window.I18N.has("reason_" + String(v).replace(/\W+/g, "_")) ? t("reason_" + String(v).replace(/\W+/g, "_")) : String(v)),
    triage_id: (v) => `${t("triage")} #${v}`,
    person_id: (v) => `${t("person")} ${v}`,
    last_seen_at: (v) => t("last_seen", { t: clockTime(v) }),
    error_code: (v) => t("error_code", { c: v }),
    repeats: (v) => t("repeats_n", { n: v }),
    channel: (v) => channelName(v),
    drill: () => null,  // shown as the DRILL badge, first
  };

  /* What a notice's payload says, in words: known fields are translated, ids stay as they are, nothing raw. */
  function noticeDetails(payload) {
    return Object.entries(payload || {}).filter(([k, v]) => k !== "language" && v !== null && v !== undefined)
      .map(([k, v]) => (NOTICE_FIELDS[k] ? NOTICE_FIELDS[k](v, payload) : typeof v === "object" ? null : String(v)))
      .filter(Boolean).join(" · ");
  }

  function notice(n) {
    const details = noticeDetails(n.payload);
    const drill = Boolean(n.payload && n.payload.drill);
    return el("li", { class: `tpl-${n.template}${drill ? " is-drill" : ""}` }, el("time", { datetime: n.created_at }, clockTime(n.created_at)), " ",
      drill ? el("span", { class: "badge drill" }, t("drill")) : "", drill ? " " : "",
      el("strong", {}, templateName(n.template)), " ", n.alert_id ? el("a", { href: `#/alert/${n.alert_id}` }, shortId(n.alert_id)) : "",
      " ", details);
  }

  /* ---- when each of her channels last proved it works (a test press, the app's self-test, a confirmation SMS) ---- */
  function provenText(iso) {
    if (!iso) return t("never_proven");
    const lang = window.I18N.language === "kk" ? "kk-KZ" : window.I18N.language;
    return t("proven_at", { t: new Date(iso).toLocaleString(lang, { dateStyle: "short", timeStyle: "short", hour12: false }) });
  }

  function channelsList(channels) {
    if (!channels || !channels.length) return el("span", { class: "empty" }, t("none"));
    return el("ul", { class: "plain channels" }, channels.map((c) => el("li", {
      class: c.last_proven_at ? "proven" : "never", dataset: { channel: c.channel, device: c.device_id || "" } },
      channelName(c.channel), c.device_id ? [" ", el("span", { class: "mono" }, c.device_id)] : null, ": ",
      el("time", c.last_proven_at ? { datetime: c.last_proven_at } : {}, provenText(c.last_proven_at)))));
  }

  function personChannels(p) {
    return el("li", { class: "person-channels", dataset: { person: p.person_id } },
      el("span", {}, `${t("person")} `, el("span", { class: "mono" }, p.person_id)), channelsList(p.channels));
  }

  function regionView(view) {
    document.getElementById("region-title").textContent = t("region_title", { r: view.region });
    document.getElementById("region-panels").replaceChildren(
      panel("unanswered", t("unanswered_alerts"), view.unanswered, alertRow),
      panel("deadlines", t("deadlines"), view.deadlines, (d) => el("li", { class: d.drill ? "is-drill" : d.duress ? "is-duress" : "" },
        el("a", { href: `#/alert/${d.alert_id}` }, d.code), " ", d.drill ? el("span", { class: "badge drill" }, t("drill")) : "", " ", t("kind_" + d.kind), " ", el("span", { class: "mono" }, d.responder_id), " ",
        el("span", { class: "countdown", dataset: { deadline: d.ack_deadline, acked: "", status: d.status } }))),
      panel("triage", t("triage"), view.triage, alertRow),
      panel("open", t("open_alerts"), view.open_alerts, alertRow),
      panel("escalations", t("escalations"), view.escalations, (e) => el("li", { class: e.drill ? "is-drill" : "" },
        el("time", { datetime: e.at }, clockTime(e.at)), " ", el("a", { href: `#/alert/${e.alert_id}` }, shortId(e.alert_id)), " ",
        e.drill ? el("span", { class: "badge drill" }, t("drill")) : "", " ", eventText(e))),
      panel("supervision", t("supervision"), view.supervision, notice),
      panel("notices", t("notices"), view.notices, notice),
      panel("failures", t("outbox_failures"), view.outbox_failures, (f) => el("li", {},
        `${f.channel} · ${templateName(f.template)} · `, el("span", { class: "mono" }, f.recipient),
        ` · ${f.attempts} ${t("attempts")} · ${f.status}`, f.last_error ? el("div", { class: "error-text" }, f.last_error) : "")));
    tick(document.getElementById("region-view"));
  }

  window.Views = { el, tick, personChannels, dispatchCard, dispatchActions, noticeDetails, alertView, regionView, drawMap, notice, get map() { return map; } };
})();
