/* "Check connection" in the calculator's menu: the app's self-test (POST /v1/tests). It proves to her that the
   app reaches the service, without raising anything: nothing is dispatched. The words are a calculator's own
   (a synced calculator checks its connection too); only enrolled phones show it (app.js render()). */
(function () {
  'use strict';
  var Q = self.CalcStore;
  var TIMEOUT_MS = 15000;
  var TEXT = {
    en: {check: 'Check connection', checking: 'Checking…', ok: 'Connection OK', failed: 'Check failed'},
    ru: {check: 'Проверить связь', checking: 'Проверка…', ok: 'Связь в порядке', failed: 'Проверка не удалась'},
    kk: {check: 'Байланысты тексеру', checking: 'Тексерілуде…', ok: 'Байланыс жақсы', failed: 'Тексеру сәтсіз'},
  };
  var $ = function (id) { return document.getElementById(id); };
  function texts() { return TEXT[document.documentElement.lang] || TEXT.en; }

  function id() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function say(key, state) {
    var out = $('check-result');
    out.hidden = !key;
    out.textContent = key ? texts()[key] : '';
    out.dataset.state = state || '';
  }

  /* One try, answered within TIMEOUT_MS; a retry of the same try (the same id) is the same test on the server. */
  async function check() {
    var token = await Q.get('token');
    if (!token) return say(null);
    say('checking', 'checking');
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, TIMEOUT_MS);
    try {
      var resp = await fetch('/v1/tests', {method: 'POST', cache: 'no-store', credentials: 'omit', signal: abort.signal,
        headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token},
        body: JSON.stringify({client_test_id: id(), language: document.documentElement.lang})});
      var doc = resp.ok ? await resp.json() : {};
      say(doc.status === 'ok' ? 'ok' : 'failed', doc.status === 'ok' ? 'ok' : 'failed');
    } catch (err) {
      say('failed', 'failed');
    } finally {
      clearTimeout(timer);
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('menu-btn').addEventListener('click', function () { $('check').textContent = texts().check; say(null); });
    $('check').addEventListener('click', check);
  });
})();
