/* The drills page (supervisors and admins): start a drill at a point or a person, the drills of the last 30 days
   with their figures, and a drill's report (per responder: time to acknowledge against the deadline, escalation,
   SMS delivery), with "End the drill" while it runs. Text only, never HTML. */
"use strict";
(function () {
  const t = (...args) => window.I18N.t(...args);
  const $ = (id) => document.getElementById(id);
  const el = (...args) => window.Views.el(...args);
  let current = null, asked = 0;

  function pct(share) { return share === null || share === undefined ? "–" : `${Math.round(share * 1000) / 10}%`; }
  function secs(s) { return s === null || s === undefined ? "–" : t("seconds", { s: Math.round(s) }); }
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString(window.I18N.language === "kk" ? "kk-KZ" : window.I18N.language, { hour12: false });
  }

  /* The figures an audit asks for, with their targets (docs/drills.md). */
  function figures(totals) {
    const target = (name) => totals.targets[name];
    const met = (name) => (target(name).met === null ? "" : target(name).met ? ` ✓` : ` ✗`);
    return [
      el("dt", {}, t("share_deadline")), el("dd", { class: "share-deadline" },
        `${pct(totals.share_within_deadline)} (${t("target")} ${pct(target("within_deadline").target)})${met("within_deadline")}`),
      el("dt", {}, t("share_60s")), el("dd", { class: "share-60s" },
        `${pct(totals.share_within_60s)} (${t("target")} ${pct(target("within_60s").target)})${met("within_60s")}`),
      el("dt", {}, t("counted")), el("dd", {}, `${totals.counted} / ${totals.dispatched}`),
      el("dt", {}, t("escalated")), el("dd", { class: "escalated" }, String(totals.escalated)),
      el("dt", {}, t("median_ack")), el("dd", {}, secs(totals.median_seconds_to_acknowledge)),
      el("dt", {}, t("sms_col")), el("dd", {}, t("sms_summary", totals.sms)),
    ];
  }

  function targetText(d) {
    return d.target === "person" ? `${t("person")} ${d.person_id || "–"}` :
      d.location ? `${d.location.lat.toFixed(3)}, ${d.location.lon.toFixed(3)}` : "–";
  }

  function drillRow(d) {
    return el("li", { class: `is-drill ${d.running ? "running" : "ended"}`, dataset: { id: d.drill_id } },
      el("a", { href: `#/drill/${d.drill_id}` }, when(d.started_at)), " ",
      el("span", { class: "badge drill" }, t("drill")), " ",
      d.running ? el("span", { class: "badge unanswered" }, t("drill_running")) : el("span", { class: "badge muted" }, t("drill_ended")),
      " · ", d.region || "–", " · ", targetText(d), " · ",
      `${t("share_deadline")}: ${pct(d.totals.share_within_deadline)}`, " · ", `${t("escalated")}: ${d.totals.escalated}`);
  }

  function renderReport(r) {
    current = r;
    $("drill-report").hidden = false;
    $("drill-report-title").textContent = t("drill_report_title", { id: r.drill_id.slice(0, 8) });
    $("drill-summary").replaceChildren(...[  // a missing part is left out (replaceChildren would write "null")
      el("dt", {}, t("status")), el("dd", { class: "drill-state" }, r.running ? t("drill_running") : t("drill_ended")),
      el("dt", {}, t("drill_started")), el("dd", {}, `${when(r.started_at)} · ${r.started_by}`),
      r.ended_at ? el("dt", {}, t("drill_ended_at")) : null, r.ended_at ? el("dd", {}, when(r.ended_at)) : null,
      el("dt", {}, t("region")), el("dd", {}, r.region || "–"),
      el("dt", {}, t("drill_where")), el("dd", {}, targetText(r)),
      el("dt", {}, t("alert")), el("dd", {}, el("a", { href: `#/alert/${r.alert_id}` }, r.alert_id.slice(0, 8))),
      ...figures(r.totals)].filter(Boolean));
    $("drill-end").hidden = !r.running;
    $("drill-lines").querySelector("tbody").replaceChildren(...r.responders.map((x) => el("tr", {
      class: `out-${x.outcome}`, dataset: { responder: x.responder_id, outcome: x.outcome } },
      el("td", { class: "mono" }, x.responder_id), el("td", {}, t("kind_" + x.kind)),
      el("td", {}, String(x.attempt), x.broadcast ? ` (${t("broadcast")})` : ""), el("td", {}, when(x.sent_at)),
      el("td", { class: "to-ack" }, secs(x.seconds_to_acknowledge)), el("td", {}, secs(x.deadline_seconds)),
      el("td", { class: "outcome" }, t("out_" + x.outcome), x.escalated ? ` · ${t("escalated")}` : ""),
      el("td", {}, x.sms ? (window.I18N.has("sms_" + x.sms) ? t("sms_" + x.sms) : x.sms) : "–"))));
  }

  async function show(drillId) {
    const ask = ++asked;
    try {
      const [period, report] = await Promise.all([window.Live.call("GET", "/v1/drills"),
        drillId ? window.Live.call("GET", `/v1/drills/${drillId}`) : Promise.resolve(null)]);
      if (ask !== asked) return;
      $("drill-period").replaceChildren(el("dt", {}, t("drills_n")), el("dd", {}, String(period.drills)),
        ...figures(period.totals));
      $("drill-list").replaceChildren(...period.items.slice().reverse().map(drillRow));
      $("drill-empty").hidden = period.items.length > 0;
      if (report) renderReport(report); else { current = null; $("drill-report").hidden = true; }
    } catch (err) {
      if (err.status === 404) { $("drill-report").hidden = true; $("drill-error").textContent = t("drill_not_found"); }
      else if (err.status !== 401) $("drill-error").textContent = err.message;
    }
  }

  function target() { return document.querySelector('input[name="drill-target"]:checked').value; }
  for (const radio of document.querySelectorAll('input[name="drill-target"]')) {
    radio.addEventListener("change", () => {
      $("drill-point").hidden = target() !== "place";
      $("drill-person").hidden = target() !== "person";
    });
  }

  $("drill-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("drill-error").textContent = "";
    let body;
    if (target() === "person") {
      body = { person_id: $("drill-person-id").value.trim() };
    } else {
      const lat = Number($("drill-lat").value.replace(",", ".")), lon = Number($("drill-lon").value.replace(",", "."));
      if (!$("drill-lat").value.trim() || !$("drill-lon").value.trim() || !Number.isFinite(lat) || !Number.isFinite(lon)) {
        $("drill-error").textContent = t("drill_bad_point");
        $("drill-lat").focus();
        return;
      }
      body = { lat, lon };
    }
    $("drill-start").disabled = true;
    try {
      const started = await window.Live.call("POST", "/v1/drills", body);
      location.hash = `#/drill/${started.drill_id}`;
    } catch (err) {
      $("drill-error").textContent = err.status === 403 ? t("drill_forbidden") : err.status === 404 ? t("drill_no_person") :
        err.status === 409 ? t("drill_conflict", { msg: err.message }) : err.message;
    } finally {
      $("drill-start").disabled = false;
    }
  });

  $("drill-end").addEventListener("click", async () => {
    if (!current) return;
    try {
      renderReport(await window.Live.call("POST", `/v1/drills/${current.drill_id}/end`));
      $("drill-report-title").focus();
      show(current.drill_id);
    } catch (err) {
      if (err.status !== 401) $("drill-error").textContent = err.message;
    }
  });

  window.Drills = { show, get current() { return current; } };
})();
