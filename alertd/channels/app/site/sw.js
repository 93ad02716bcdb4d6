/* The service worker: keeps the app working with no network (its files from a cache, refreshed in the
   background), and sends the queued alert, fixes and cancel when the network returns. */
'use strict';
importScripts('queue.js');

var CACHE = 'calc-shell';
var SHELL = ['./', 'app.css', 'queue.js', 'aml.js', 'app.js', 'check.js', 'manifest.webmanifest'];
var SCOPE = new URL(self.registration.scope).pathname;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(self.clients.claim().then(flushQuietly));
});

/* The app's own files: from the cache at once, refreshed from the network for next time. */
self.addEventListener('fetch', function (event) {
  var url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.indexOf(SCOPE) !== 0) {
    return;  // the API and anything else go straight to the network
  }
  var key = event.request.mode === 'navigate' ? './' : event.request;
  event.respondWith(caches.open(CACHE).then(function (cache) {
    return cache.match(key, {ignoreSearch: true}).then(function (cached) {
      var fresh = fetch(event.request).then(function (resp) {
        if (resp.ok) cache.put(key, resp.clone());
        return resp;
      });
      if (cached) {
        event.waitUntil(fresh.catch(function () {}));
        return cached;
      }
      return fresh;
    });
  }));
});

/* The page asks for a send (it came online, or it queued something); the answer goes back on the port. */
self.addEventListener('message', function (event) {
  if (event.data !== 'flush') return;
  event.waitUntil(CalcStore.flush().catch(function () { return 'offline'; }).then(function (outcome) {
    if (event.ports[0]) event.ports[0].postMessage(outcome);
  }));
});

/* Background Sync: the browser calls this when connectivity returns, even with the app closed. */
self.addEventListener('sync', function (event) {
  if (event.tag !== 'flush') return;
  event.waitUntil(CalcStore.flush().then(function (outcome) {
    if (outcome === 'offline') throw new Error('still offline');  // the browser retries later
  }));
});

function flushQuietly() {
  return CalcStore.flush().catch(function () {});
}
