/* A working calculator that is also a silent alarm.
   Gestures (keys since the last "=" or AC, digits only):
     secret then "="       raise an alert (the display shows the number, as any calculation would)
     secret then "%"       open the settings
     0000 then "%"         before set-up: the activation code (her advocate knows it; the menu shows nothing)
     4+ digits then "="    while an alert is live: cancel it with that PIN (the cancel and the duress PIN
                           look the same here and get the same answer from the server)
     secret × N then "="   start a check-in timer of N minutes (1 to 1440): unless she checks in, her alert is
                           raised when it runs out (the display shows the product, as any calculation would)
     secret + N then "="   while a timer runs: N more minutes
     4+ digits then "="    while a timer runs: check in with that PIN (before cancelling a live alert); the
                           duress PIN looks the same here and raises a duress alert
     While a timer runs the display shows "M", a calculator's memory sign, and nothing else.
     AC                    quick exit: clears the screen and closes anything open
   Nothing is ever written to the title, the history, notifications or sound. */
(function () {
  'use strict';
  var Q = self.CalcStore;
  var FIRST_FIX_MS = 4000;       // never wait longer than this for a location before sending
  var SMS_OFFER_MS = 8000;       // no answer by then: offer the SMS
  var FIX_EVERY_S = 30;
  var FORGET_AFTER_MS = 12 * 3600 * 1000;
  var RETRY_MS = 20000;
  var OPEN_ACTIVATION = '0000';  // then "%": nothing in the menu says this calculator can be activated

  var TEXT = {
    en: {reset: 'Reset', resetAgain: 'Tap again to reset', code: 'Activation code',
      ok: 'OK', badCode: 'Code not accepted', noNet: 'No connection', secret: 'Secret number (4–8 digits)',
      cue: 'Sign that help was called', dot: 'Dot', line: 'Line', none: 'None',
      cueHint: 'Shown on the display while your alert is live. Only you know what it means.',
      minutes: 'Send my location for (minutes)',
      minutesHint: 'After an alert, where you are is sent every 30 seconds for this long, while the app is open.',
      save: 'Save', badSecret: 'Use 4 to 8 digits', share: 'Share result'},
    ru: {reset: 'Сбросить', resetAgain: 'Нажмите ещё раз', code: 'Код активации',
      ok: 'OK', badCode: 'Код не принят', noNet: 'Нет связи', secret: 'Секретное число (4–8 цифр)',
      cue: 'Знак, что помощь вызвана', dot: 'Точка', line: 'Линия', none: 'Нет',
      cueHint: 'Виден на экране, пока тревога действует. Что он значит, знаете только вы.',
      minutes: 'Отправлять, где я, в течение (минут)',
      minutesHint: 'После тревоги телефон каждые 30 секунд сообщает, где вы, столько минут, пока приложение открыто.',
      save: 'Сохранить', badSecret: 'Нужно от 4 до 8 цифр', share: 'Поделиться'},
    kk: {reset: 'Тазарту', resetAgain: 'Тағы басыңыз', code: 'Белсендіру коды',
      ok: 'OK', badCode: 'Код қабылданбады', noNet: 'Байланыс жоқ', secret: 'Құпия сан (4–8 цифр)',
      cue: 'Көмек шақырылғанын білдіретін белгі', dot: 'Нүкте', line: 'Сызық', none: 'Жоқ',
      cueHint: 'Дабыл белсенді тұрғанда экранда көрінеді. Оның мағынасын тек сіз білесіз.',
      minutes: 'Орналасқан жерімді жіберу уақыты (минут)',
      minutesHint: 'Дабылдан кейін қолданба ашық тұрғанда телефон әр 30 секунд сайын осынша минут бойы қайда екеніңізді жібереді.',
      save: 'Сақтау', badSecret: '4–8 цифр керек', share: 'Бөлісу'},
  };

  var $ = function (id) { return document.getElementById(id); };
  var lang = 'en';
  var cfg = null;          // {secret, cue, minutes, every, sms} once set up
  var enrolled = false;
  var live = null;         // the alert she raised: {cid, at, until, cancelling}
  var seq = '';            // keys pressed since the last "=" or AC
  var tracker = null;
  var raising = null;      // resolves once the alert is in the queue (a cancel must queue behind it)
  var pendingCancel = null;  // {cid, refused} from her cancel until its answer
  var timer = null;        // her check-in timer: {cid, due, checking, refused}
  var starting = null;     // resolves once the timer's start is in the queue (a check-in must queue behind it)
  var pendingCheckin = null; // {cid, refused} from her check-in until its answer
  var memTimeout = null;
  var TIMER_MAX_MIN = 1440;

  /* ---- the calculator ---- */
  var acc = null, op = null, cur = '0', fresh = true;

  function num(s) { return parseFloat(s) || 0; }
  function fmt(x) {
    if (!isFinite(x)) return 'Error';
    return String(parseFloat(x.toPrecision(12)));
  }
  function apply(a, o, b) {
    return o === '+' ? a + b : o === '-' ? a - b : o === '*' ? a * b : a / b;
  }
  var SYMBOL = {'+': '+', '-': '−', '*': '×', '/': '÷'};

  function calc(k) {
    if (/^\d$/.test(k)) {
      cur = fresh || cur === '0' ? k : cur.length < 15 ? cur + k : cur;
      fresh = false;
    } else if (k === '.') {
      if (fresh) { cur = '0.'; fresh = false; } else if (cur.indexOf('.') < 0) cur += '.';
    } else if (k === 'back') {
      if (!fresh) cur = cur.length > 1 ? cur.slice(0, -1) : '0';
    } else if (k === 'neg') {
      cur = cur.charAt(0) === '-' ? cur.slice(1) : cur === '0' ? cur : '-' + cur;
    } else if (k === 'pct') {
      cur = fmt(num(cur) / 100); fresh = true;
    } else if (SYMBOL[k]) {
      acc = op && !fresh ? apply(acc, op, num(cur)) : op ? acc : num(cur);
      op = k; fresh = true; cur = fmt(acc);
    } else if (k === '=') {
      if (op) cur = fmt(apply(acc, op, num(cur)));
      acc = null; op = null; fresh = true;
    } else if (k === 'ac') {
      acc = null; op = null; cur = '0'; fresh = true;
    }
    $('out').textContent = cur;
    $('expr').textContent = op ? fmt(acc) + ' ' + SYMBOL[op] : '';
  }

  function press(k) {
    var before = seq;
    seq = k === '=' || k === 'ac' ? '' : seq + k;
    calc(k);
    if (k === 'ac') quickExit();
    var t = k === '=' && cfg && /^(\d+)([*+])(\d{1,4})$/.exec(before);
    if (t && t[1] === cfg.secret) {
      if (t[2] === '*') startTimer(parseInt(t[3], 10)); else extendTimer(parseInt(t[3], 10));
      return;
    }
    if (!/^\d+$/.test(before)) return;
    if (k === '=' && cfg && before === cfg.secret) raise();
    else if (k === '=' && running() && before.length >= 4) checkIn(before);
    else if (k === '=' && live && !live.cancelling && before.length >= 4) cancel(before);
    else if (k === 'pct' && cfg && before === cfg.secret) { seq = ''; show('p-setup'); }
    else if (k === 'pct' && !cfg && before === OPEN_ACTIVATION) { seq = ''; show(enrolled ? 'p-setup' : 'p-code'); }
  }

  /* ---- raising, tracking, cancelling ---- */
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function locate(ms, maxAge) {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) return resolve(null);
      var timer = setTimeout(function () { resolve(null); }, ms + 500);
      navigator.geolocation.getCurrentPosition(function (p) {
        clearTimeout(timer);
        var radius = Math.round(p.coords.accuracy);
        resolve({lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: radius,
          fix_time: new Date(p.timestamp).toISOString(), source: radius <= 100 ? 'gps' : 'network'});
      }, function () { clearTimeout(timer); resolve(null); },
      {enableHighAccuracy: true, timeout: ms, maximumAge: maxAge || 0});
    });
  }

  async function raise() {
    if (live) return;  // already live: nothing new to send
    var now = new Date();
    live = {cid: uuid(), at: now.getTime(), until: now.getTime() + cfg.minutes * 60000, cancelling: false};
    var cid = live.cid;
    render();
    raising = (async function () {
      await Q.set('alert', live);
      var fix = await locate(FIRST_FIX_MS, 15000);  // a fix from moments ago beats waiting for a new one
      var body = {client_alert_id: cid, triggered_at: now.toISOString()};
      if (fix) body.location = fix;
      await Q.enqueue({kind: 'alert', cid: cid, body: body});
      return fix;
    })();
    var fix = await raising;
    var outcome = await Promise.race([send(), wait(SMS_OFFER_MS).then(function () { return 'slow'; })]);
    if (outcome !== 'done' && cfg.sms) offerSms(fix);
    track();
  }

  function track() {
    clearInterval(tracker);
    tracker = setInterval(async function () {
      if (!live || live.cancelling) return;
      if (Date.now() > live.until) { clearInterval(tracker); return; }
      var fix = await locate(FIRST_FIX_MS);
      if (fix && live && !live.cancelling) {
        await Q.enqueue({kind: 'fixes', cid: live.cid, fixes: [fix]});
        send();
      }
    }, (cfg.every || FIX_EVERY_S) * 1000);
  }

  async function cancel(pin) {
    // The screen changes the same way, at once, whichever PIN this is: the cue goes.
    var mine = live;
    mine.cancelling = true;
    pendingCancel = {cid: mine.cid, refused: mine.refused || 0};
    render();
    await raising;
    await Q.set('alert', mine);
    await Q.dropFixes(mine.cid);
    await Q.enqueue({kind: 'cancel', cid: mine.cid, pin: pin});
    send();
  }

  /* ---- the check-in timer ---- */
  function running() { return !!timer && !timer.checking && Date.now() < timer.due; }

  async function startTimer(minutes) {
    if (minutes < 1 || minutes > TIMER_MAX_MIN || running()) return;
    timer = {cid: uuid(), due: Date.now() + minutes * 60000, checking: false, refused: 0};
    var cid = timer.cid;
    render();
    starting = (async function () {
      await Q.set('timer', timer);
      var fix = await locate(FIRST_FIX_MS, 15000);
      var body = {client_timer_id: cid, duration_s: minutes * 60};
      if (fix) body.location = fix;
      await Q.enqueue({kind: 'timer', cid: cid, body: body});
    })();
    await starting;
    send();
  }

  async function extendTimer(minutes) {
    if (minutes < 1 || minutes > TIMER_MAX_MIN || !running()) return;
    var mine = timer;
    mine.due += minutes * 60000;
    render();
    await starting;
    await Q.set('timer', mine);
    await Q.enqueue({kind: 'extend', cid: mine.cid, body: {duration_s: minutes * 60}});
    send();
  }

  async function checkIn(pin) {
    // As with a cancel: the screen changes the same way, at once, whichever PIN this is (the "M" goes).
    var mine = timer;
    mine.checking = true;
    pendingCheckin = {cid: mine.cid, refused: mine.refused || 0};
    render();
    await starting;
    await Q.set('timer', mine);
    await Q.enqueue({kind: 'checkin', cid: mine.cid, pin: pin});
    send();
  }

  function offerSms(fix) {
    var link = $('share');
    link.href = 'sms:' + cfg.sms + '?body=' + encodeURIComponent(self.amlBody(fix));
    link.hidden = false;
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  /* Send the queue now: through the service worker when it runs, else from the page (same code, same lock). */
  function send() {
    var worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    var sent = worker ? new Promise(function (resolve) {
      setTimeout(function () { resolve('offline'); }, 35000);  // a worker that never answers: try again
      var ch = new MessageChannel();
      ch.port1.onmessage = function (e) { resolve(e.data); };
      worker.postMessage('flush', [ch.port2]);
    }) : Q.flush();
    return sent.then(function (outcome) {
      clearTimeout(retry);
      if (outcome === 'offline') {
        laterSync();
        // The network can come back in steps (a radio "online" before its data flows): try again soon.
        retry = setTimeout(send, backoff);
        backoff = Math.min(backoff * 2, RETRY_MS);
      } else {
        backoff = 1000;
      }
      return outcome;
    });
  }
  var retry = null, backoff = 1000;

  function laterSync() {
    if (!navigator.serviceWorker) return;
    navigator.serviceWorker.ready.then(function (r) { return r.sync && r.sync.register('flush'); })
      .catch(function () {});
  }

  /* ---- what is stored, and the screen ---- */
  async function load() {
    lang = (await Q.get('lang')) || pickLang();
    enrolled = !!(await Q.get('token'));
    cfg = (await Q.get('cfg')) || null;
    live = (await Q.get('alert')) || null;
    timer = (await Q.get('timer')) || null;
    if (timer && pendingCheckin && timer.cid === pendingCheckin.cid) {
      if ((timer.refused || 0) === pendingCheckin.refused) timer.checking = true; else pendingCheckin = null;
    }
    if (timer && Date.now() - timer.due > FORGET_AFTER_MS) { await Q.del('timer'); timer = null; }
    if (live && pendingCancel && live.cid === pendingCancel.cid) {
      // Until the server refuses her PIN (a wrong one), a stored "not cancelling" is only an older write.
      if ((live.refused || 0) === pendingCancel.refused) live.cancelling = true; else pendingCancel = null;
    }
    if (live && Date.now() - live.at > FORGET_AFTER_MS) { await Q.del('alert'); live = null; }
    if (!live) { clearInterval(tracker); tracker = null; }
    if (live && !tracker && cfg) track();
    var ids = (await Q.get('ids')) || {};
    if (!live || ids[live.cid]) $('share').hidden = true;  // delivered after all: no SMS needed
    render();
  }

  function pickLang() {
    var want = (navigator.language || 'en').slice(0, 2);
    return TEXT[want] ? want : 'en';
  }

  function render() {
    var t = TEXT[lang];
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-t]').forEach(function (el) { el.textContent = t[el.dataset.t]; });
    $('reset').hidden = !enrolled;  // before enrolment nothing is stored, so there is nothing to wipe
    $('check').hidden = !enrolled;  // the self-test (check.js) needs her device token
    var on = !!live && !live.cancelling && cfg && cfg.cue !== 'none';
    $('cue').hidden = !(on && cfg.cue === 'dot');
    $('display').classList.toggle('line', !!(on && cfg.cue === 'line'));
    $('mem').hidden = !running();
    clearTimeout(memTimeout);  // the "M" goes when the timer runs out, as the server raises her alert
    if (running()) memTimeout = setTimeout(render, Math.min(timer.due - Date.now() + 50, 2147483000));
  }

  function show(id) {
    var form = id === 'p-code' || id === 'p-setup';
    ['menu', 'p-code', 'p-setup'].forEach(function (p) { $(p).hidden = p !== id; });
    $('display').hidden = form;
    $('calc').classList.toggle('form', form);  // of the keys only AC stays: it is always one tap away
    if (id === 'p-setup' && cfg) {
      $('secret').value = cfg.secret; $('cue-kind').value = cfg.cue; $('minutes').value = String(cfg.minutes);
    }
    if (form) $(id === 'p-code' ? 'code' : 'secret').focus();  // the key pressed to get here is gone
    $('reset').textContent = TEXT[lang].reset;
    resetArmed = false;
  }

  function quickExit() {
    show(null);
    $('share').hidden = true;
    $('code').value = ''; $('secret').value = '';
    fail('code', null); fail('secret', null);
    calc('ac');
  }

  /* An error under a field, or none: screen readers say it at once (role="alert" on a form that only she and her
     advocate open; nothing on the calculator face ever speaks but the display), and the field says it is wrong. */
  var ERRORS = {code: 'code-err', secret: 'setup-err'};
  var failures = 0;
  function fail(field, text) {
    var box = $(ERRORS[field]), mine = ++failures;
    box.textContent = '';  // the same text again is news again: a live region reads changes only
    if (text) setTimeout(function () { if (mine === failures) box.textContent = text; }, 50);
    if (text) $(field).setAttribute('aria-invalid', 'true'); else $(field).removeAttribute('aria-invalid');
  }

  var resetArmed = false;
  async function wipe() {
    if (!resetArmed) { resetArmed = true; $('reset').textContent = TEXT[lang].resetAgain; return; }
    clearInterval(tracker); tracker = null; pendingCancel = null; pendingCheckin = null;
    await Q.wipe();
    enrolled = false; cfg = null; live = null; timer = null; lang = pickLang();
    quickExit();
    render();
  }

  async function activate(e) {
    e.preventDefault();
    try {
      var resp = await fetch('/v1/enrol', {method: 'POST', cache: 'no-store', credentials: 'omit',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({code: $('code').value})});
      if (!resp.ok) { fail('code', TEXT[lang].badCode); return; }
      var doc = await resp.json();
      await Q.set('token', doc.token);
      await Q.set('sms', doc.sms_number || '');
      enrolled = true;
      $('code').value = '';
      fail('code', null);
      render();
      show('p-setup');
    } catch (err) {
      fail('code', TEXT[lang].noNet);
    }
  }

  async function saveSetup(e) {
    e.preventDefault();
    var secret = $('secret').value;
    if (!/^\d{4,8}$/.test(secret)) { fail('secret', TEXT[lang].badSecret); return; }
    var every = cfg && cfg.every;
    cfg = {secret: secret, cue: $('cue-kind').value, minutes: parseInt($('minutes').value, 10),
      every: every || FIX_EVERY_S, sms: (await Q.get('sms')) || ''};
    await Q.set('cfg', cfg);
    quickExit();
    render();
    locate(FIRST_FIX_MS);  // asks for the location permission now, with her advocate, never during an alert
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('keys').addEventListener('click', function (e) {
      var k = e.target.dataset && e.target.dataset.k;
      if (k) press(k);
    });
    $('menu-btn').addEventListener('click', function () { show($('menu').hidden ? 'menu' : null); });
    $('menu').addEventListener('click', async function (e) {
      var el = e.target;
      if (el.dataset.lang) { lang = el.dataset.lang; if (enrolled) await Q.set('lang', lang); show(null); render(); }
      else if (el.id === 'reset') wipe();
    });
    $('p-code').addEventListener('submit', activate);
    $('p-setup').addEventListener('submit', saveSetup);
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape') quickExit(); });
    document.addEventListener('visibilitychange', function () { if (document.hidden) quickExit(); });
    window.addEventListener('online', function () { backoff = 1000; send(); });
    if (typeof BroadcastChannel === 'function') new BroadcastChannel('calc').onmessage = load;
    if (navigator.serviceWorker) navigator.serviceWorker.register('sw.js', {scope: './'}).catch(function () {});
    load().then(function () { if (enrolled) send(); });
  });
})();
