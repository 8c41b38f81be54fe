/* portal-pulse counter block. Plain ES2017, no build step.
 *
 *   <div id="pulse-counter"></div>
 *   <script src="https://counter.example/widget.js" data-site="default" data-lang="vi" async></script>
 *
 * data-site    configured site name (default "default")
 * data-lang    "vi" (default) or "en"
 * data-target  id (or CSS selector) of the element to render into (default "pulse-counter")
 * data-member  "1" when the user is signed in
 *
 * Sends one pageview per load with an event id, heartbeats every 60 s while the page is
 * visible, renders the five figures. Hits that could not be sent (offline, 5xx) are kept in
 * localStorage with their ids and re-sent later; the server counts an id once.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var base = new URL(script.src, document.baseURI).origin;
  var data = script.dataset || {};
  var site = data.site || 'default';
  var lang = data.lang === 'en' ? 'en' : 'vi';
  var member = data.member === '1' || data.member === 'true';
  var HEARTBEAT_MS = 60000;
  var MAX_QUEUED = 50;
  var QUEUE_KEY = 'pulse:queue:' + site;
  var VISITOR_KEY = 'pulse:visitor';
  var SEQ_KEY = 'pulse:seq';
  var LABELS = {
    vi: [['online', 'Đang truy cập'], ['today', 'Hôm nay'], ['this_month', 'Tháng hiện tại'],
      ['last_month', 'Tháng trước'], ['total', 'Tổng lượt truy cập']],
    en: [['online', 'Online now'], ['today', 'Today'], ['this_month', 'This month'],
      ['last_month', 'Last month'], ['total', 'Total visits']]
  };
  var LOCALES = { vi: 'vi-VN', en: 'en-US' };

  function randomId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function storage() {
    try {
      var s = window.localStorage;
      s.setItem('pulse:probe', '1');
      s.removeItem('pulse:probe');
      return s;
    } catch (e) {
      return null;
    }
  }
  var store = storage();
  var memoryVisitor = null;

  function visitorId() {
    if (!store) { return memoryVisitor || (memoryVisitor = randomId()); }
    var id = store.getItem(VISITOR_KEY);
    if (!id) { id = randomId(); store.setItem(VISITOR_KEY, id); }
    return id;
  }

  // Each hit of this visitor gets the next number: the server recognises a re-sent hit by
  // it, keeping a few bytes per visitor instead of one key per hit.
  var memorySeq = 0;
  function nextSeq() {
    var seq = store ? parseInt(store.getItem(SEQ_KEY) || '0', 10) || 0 : memorySeq;
    seq = seq >= 9007199254740990 ? 0 : seq + 1;
    if (store) { store.setItem(SEQ_KEY, String(seq)); } else { memorySeq = seq; }
    return seq;
  }

  function readQueue() {
    if (!store) { return []; }
    try {
      var items = JSON.parse(store.getItem(QUEUE_KEY) || '[]');
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function writeQueue(items) {
    if (!store) { return; }
    if (items.length) { store.setItem(QUEUE_KEY, JSON.stringify(items.slice(-MAX_QUEUED))); }
    else { store.removeItem(QUEUE_KEY); }
  }

  function enqueue(hit) {
    var items = readQueue().filter(function (item) { return item.id !== hit.id; });
    items.push(hit);
    writeQueue(items);
  }

  function dequeue(id) {
    writeQueue(readQueue().filter(function (item) { return item.id !== id; }));
  }

  function makeHit(kind) {
    return {
      site: site, kind: kind, path: location.pathname || '/', visitor: visitorId(),
      member: member, referrer: document.referrer || null, id: randomId(), seq: nextSeq()
    };
  }

  // text/plain keeps the request "simple": no CORS preflight, and sendBeacon-compatible.
  function post(hit, withStats) {
    var url = base + '/v1/hit' + (withStats ? '?stats=1' : '');
    var body = JSON.stringify(hit);
    if (!window.fetch) {
      var sent = navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      return Promise.resolve({ ok: !!sent, retry: !sent, stats: null });
    }
    return fetch(url, {
      method: 'POST', body: body, keepalive: true, mode: 'cors', credentials: 'omit',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' }
    }).then(function (response) {
      if (response.ok) {
        if (response.status === 200) {
          return response.json().then(function (stats) { return { ok: true, stats: stats }; },
            function () { return { ok: true, stats: null }; });
        }
        return { ok: true, stats: null };
      }
      // 4xx: the hit is wrong and will never be accepted; 5xx: try again later.
      return { ok: false, retry: response.status >= 500, stats: null };
    }, function () {
      return { ok: false, retry: true, stats: null };
    });
  }

  var flushing = false;
  function flushQueue() {
    if (flushing) { return Promise.resolve(); }
    var items = readQueue();
    if (!items.length) { return Promise.resolve(); }
    flushing = true;
    return items.reduce(function (chain, hit) {
      return chain.then(function (stop) {
        if (stop) { return true; }
        return post(hit, false).then(function (result) {
          if (result.ok || !result.retry) { dequeue(hit.id); return false; }
          return true; // still failing: keep the rest for later
        });
      });
    }, Promise.resolve(false)).then(function () { flushing = false; }, function () { flushing = false; });
  }

  function send(kind, withStats, keep) {
    var hit = makeHit(kind);
    if (keep) { enqueue(hit); } // kept until the server acknowledged it
    return post(hit, withStats).then(function (result) {
      if (keep && (result.ok || !result.retry)) { dequeue(hit.id); }
      if (result.ok) { flushQueue(); }
      return result;
    });
  }

  function target() {
    var name = data.target || 'pulse-counter';
    return document.getElementById(name) || (function () {
      try { return document.querySelector(name); } catch (e) { return null; }
    })();
  }

  function render(stats) {
    var element = target();
    if (!element) { return; }
    var format = new Intl.NumberFormat(LOCALES[lang]);
    var list = document.createElement('ul');
    list.className = 'pulse-counter';
    list.setAttribute('lang', lang);
    LABELS[lang].forEach(function (pair) {
      var item = document.createElement('li');
      item.setAttribute('data-field', pair[0]);
      var label = document.createElement('span');
      label.className = 'pulse-label';
      label.textContent = pair[1];
      var value = document.createElement('span');
      value.className = 'pulse-value';
      var number = stats && typeof stats[pair[0]] === 'number' ? stats[pair[0]] : null;
      value.textContent = number === null ? '–' : format.format(number);
      item.appendChild(label);
      item.appendChild(document.createTextNode(': '));
      item.appendChild(value);
      list.appendChild(item);
    });
    element.textContent = '';
    element.appendChild(list);
  }

  function fetchStats() {
    if (!window.fetch) { return Promise.resolve(null); }
    return fetch(base + '/v1/stats?site=' + encodeURIComponent(site), { mode: 'cors', credentials: 'omit' })
      .then(function (r) { return r.ok ? r.json() : null; }, function () { return null; });
  }

  function showFigures(result) {
    if (result && result.stats) { render(result.stats); return; }
    fetchStats().then(render);
  }

  function start() {
    send('pageview', true, true).then(showFigures);
    setInterval(function () {
      if (document.visibilityState === 'visible') {
        send('heartbeat', true, false).then(showFigures);
      }
    }, HEARTBEAT_MS);
    window.addEventListener('online', flushQueue);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
  window.portalPulse = { flush: flushQueue, queued: readQueue };
})();
