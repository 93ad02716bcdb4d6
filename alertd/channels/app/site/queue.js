/* Storage and delivery, shared by the page and the service worker (importScripts): one IndexedDB database
   ("calc": a key-value store and a FIFO queue of requests), and one sender at a time (a Web Lock), so a
   queued request reaches the server once even when the page and the service worker both try. */
(function (g) {
  'use strict';
  var DB = 'calc';
  var LOCK = 'calc-send';
  var TIMEOUT_MS = 30000;
  var OPEN = ['open', 'unanswered'];

  /* The database, or null when it does not exist and `create` is false (reads never create it, so a wiped
     phone stays empty until the next activation). */
  function open(create) {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      var fresh = false;
      req.onupgradeneeded = function () {
        if (!create) { fresh = true; req.transaction.abort(); return; }
        req.result.createObjectStore('kv');
        req.result.createObjectStore('queue', {autoIncrement: true});
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { if (fresh) resolve(null); else reject(req.error); };
    });
  }

  function run(store, mode, create, work) {
    return open(create).then(function (db) {
      if (!db) return undefined;
      return new Promise(function (resolve, reject) {
        var t = db.transaction(store, mode);
        var out;
        var req = work(t.objectStore(store));
        if (req) req.onsuccess = function () { out = req.result; };
        t.oncomplete = function () { db.close(); resolve(out); };
        t.onerror = t.onabort = function () { db.close(); reject(t.error); };
      });
    });
  }

  var Q = {
    get: function (key) { return run('kv', 'readonly', false, function (s) { return s.get(key); }); },
    set: function (key, value) { return run('kv', 'readwrite', true, function (s) { return s.put(value, key); }); },
    del: function (key) { return run('kv', 'readwrite', false, function (s) { return s.delete(key); }); },
    enqueue: function (item) { return run('queue', 'readwrite', true, function (s) { return s.add(item); }); },
    pending: function () {
      return run('queue', 'readonly', false, function (s) { return s.count(); }).then(function (n) { return n || 0; });
    },

    /* Drop queued location fixes of an alert (she is cancelling it). */
    dropFixes: function (cid) {
      return run('queue', 'readwrite', false, function (s) {
        s.openCursor().onsuccess = function (e) {
          var c = e.target.result;
          if (!c) return;
          if (c.value.kind === 'fixes' && c.value.cid === cid) c.delete();
          c.continue();
        };
      });
    },

    /* Send what is queued, oldest first: 'done', 'offline' (stopped; retry later) or 'none' (not enrolled). */
    flush: function () {
      return g.navigator.locks.request(LOCK, flushLocked);
    },

    /* Remove the token, the settings, the queue: the whole database. */
    wipe: function () {
      return g.navigator.locks.request(LOCK, function () {
        return new Promise(function (resolve) {
          var req = indexedDB.deleteDatabase(DB);
          req.onsuccess = req.onerror = req.onblocked = function () { resolve(); };
        });
      }).then(announce);
    },
  };

  async function queued() {
    var db = await open(false);
    if (!db) return [];
    return new Promise(function (resolve, reject) {
      var found = [];
      var t = db.transaction('queue', 'readonly');
      t.objectStore('queue').openCursor().onsuccess = function (e) {
        var c = e.target.result;
        if (c) { found.push([c.key, c.value]); c.continue(); }
      };
      t.oncomplete = function () { db.close(); resolve(found); };
      t.onerror = function () { db.close(); reject(t.error); };
    });
  }

  async function post(path, token, body) {
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, TIMEOUT_MS);
    try {
      var resp = await fetch(path, {
        method: 'POST', body: JSON.stringify(body), cache: 'no-store', credentials: 'omit', signal: abort.signal,
        headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token},
      });
      return {status: resp.status, doc: await resp.json().catch(function () { return {}; })};
    } finally {
      clearTimeout(timer);
    }
  }

  /* The alert she raised is over (cancelled or closed): forget it, so the cue goes and tracking stops. */
  async function forget(cid) {
    var alert = await Q.get('alert');
    if (alert && alert.cid === cid) await Q.del('alert');
    var ids = (await Q.get('ids')) || {};
    delete ids[cid];
    await Q.set('ids', ids);
  }

  /* Her check-in timer is over (checked in, run out, or refused): forget it, so the "M" goes. */
  async function forgetTimer(cid) {
    var timer = await Q.get('timer');
    if (timer && timer.cid === cid) await Q.del('timer');
    var ids = (await Q.get('ids')) || {};
    delete ids[cid];
    await Q.set('ids', ids);
  }

  /* The server's due time is the truth (a start queued offline began when it arrived). */
  async function timerDue(cid, dueAt) {
    var timer = await Q.get('timer');
    if (timer && timer.cid === cid && dueAt) { timer.due = Date.parse(dueAt); await Q.set('timer', timer); }
  }

  /* Deliver a queued timer start, extension or check-in (see deliver). */
  async function deliverTimer(item, token, ids) {
    var r;
    if (item.kind === 'timer') {
      r = await post('/v1/timers', token, item.body);
      if (r.status >= 500 || r.status === 429) return false;
      if (r.status < 300) {
        ids[item.cid] = r.doc.timer_id;
        await Q.set('ids', ids);
        await timerDue(item.cid, r.doc.due_at);
      } else {
        await forgetTimer(item.cid);
      }
      return true;
    }
    var id = ids[item.cid];
    if (!id) return true;  // its start was refused: nothing to extend or check in
    if (item.kind === 'extend') {
      r = await post('/v1/timers/' + id + '/extend', token, item.body);
      if (r.status >= 500 || r.status === 429) return false;
      if (r.status < 300) await timerDue(item.cid, r.doc.due_at); else if (r.status === 409) await forgetTimer(item.cid);
      return true;
    }
    r = await post('/v1/timers/' + id + '/checkin', token, {pin: item.pin});
    if (r.status >= 500 || r.status === 429) return false;
    if (r.status === 403) {  // a wrong PIN: the timer still runs and the "M" comes back
      var timer = await Q.get('timer');
      if (timer && timer.cid === item.cid) {
        timer.checking = false;
        timer.refused = (timer.refused || 0) + 1;
        await Q.set('timer', timer);
      }
    } else {
      await forgetTimer(item.cid);
    }
    return true;
  }

  /* Deliver one queued item: true when it is done with (sent, or refused for good), false to retry later. */
  async function deliver(item, token) {
    var ids = (await Q.get('ids')) || {};
    if (item.kind === 'timer' || item.kind === 'extend' || item.kind === 'checkin') {
      return deliverTimer(item, token, ids);
    }
    if (item.kind === 'alert') {
      var r = await post('/v1/alerts', token, item.body);
      if (r.status >= 500) return false;
      if (r.status < 300) { ids[item.cid] = r.doc.alert_id; await Q.set('ids', ids); }
      return true;
    }
    var id = ids[item.cid];
    if (!id) return true;  // its alert was refused, so there is nothing to attach this to
    if (item.kind === 'fixes') {
      r = await post('/v1/alerts/' + id + '/locations', token, {fixes: item.fixes});
      if (r.status >= 500 || r.status === 429) return false;  // 429: over the device's budget, send it later
      if (r.status >= 400 || OPEN.indexOf(r.doc.status) < 0) await forget(item.cid);
      return true;
    }
    r = await post('/v1/alerts/' + id + '/cancel', token, {pin: item.pin});
    if (r.status >= 500 || r.status === 429) return false;
    if (r.status === 403) {  // a wrong PIN: the alert stays live and the cue comes back
      var alert = await Q.get('alert');
      if (alert && alert.cid === item.cid) {
        alert.cancelling = false;
        alert.refused = (alert.refused || 0) + 1;
        await Q.set('alert', alert);
      }
    } else {
      await forget(item.cid);
    }
    return true;
  }

  async function flushLocked() {
    var token = await Q.get('token');
    if (!token) return 'none';
    var outcome = 'done';
    for (var entry of await queued()) {
      var done;
      try {
        done = await deliver(entry[1], token);
      } catch (e) {
        done = false;  // no network (or it timed out): everything stays queued, in order
      }
      if (!done) { outcome = 'offline'; break; }
      await run('queue', 'readwrite', false, function (s) { return s.delete(entry[0]); });
    }
    announce();
    return outcome;
  }

  /* Tell every open page that the stored state changed. */
  function announce() {
    if (typeof BroadcastChannel === 'function') new BroadcastChannel('calc').postMessage('changed');
  }

  g.CalcStore = Q;
})(self);
