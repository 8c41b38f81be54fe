/* portal-pulse counter block. Plain ES2017, no build step.
 *
 *   <div id="pulse-counter"></div>
 *   <script src="https://counter.example/widget.js" data-site="default" data-lang="vi" async></script>
 *
 * data-site    configured site name (default "default")
 * data-lang    "vi" (default) or "en"
 * data-target  id (or CSS selector) of the element to render into (default "pulse-counter")
 * data-member  "1" when the user is signed in
 * data-breakdown "1": sub-rows under "online" for members, guests and bots
 * data-refresh seconds between refreshes (heartbeats) while visible (default 60)
 * data-timeout seconds before a call to the counter is given up (default 8)
 *
 * Sends one pageview per load with an event id, heartbeats every refresh interval while the
 * page is visible and at once when it becomes visible again, renders the figures. Hits that
 * could not be sent (offline, 5xx) are kept in localStorage with their ids and re-sent
 * later; the server counts an id once.
 *
 * The block lives in a shadow root (the host page's CSS does not reach it), styled by the
 * counter's /widget.css (no inline styles: works under a strict CSP) and themed through CSS
 * custom properties set on the container (--pulse-accent, --pulse-color, ... see README).
 * The container's own content is the fallback shown when the script cannot run at all.
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
  var breakdown = data.breakdown === '1' || data.breakdown === 'true';
  var HEARTBEAT_MS = Math.max(5, Number(data.refresh) || 60) * 1000;
  var TIMEOUT_MS = Math.max(1, Number(data.timeout) || 8) * 1000;
  var VISIBLE_REFRESH_MS = 5000;   // coming back sooner than this after a refresh: no new one
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
  var SUB_LABELS = {
    vi: [['members', 'Thành viên'], ['guests', 'Khách'], ['bots', 'Máy tìm kiếm']],
    en: [['members', 'Members'], ['guests', 'Guests'], ['bots', 'Search engines']]
  };
  var TEXT = {
    vi: { title: 'Thống kê truy cập', loading: 'Đang tải số liệu…',
      unavailable: 'Chưa tải được số liệu truy cập. Sẽ thử lại sau.' },
    en: { title: 'Visit statistics', loading: 'Loading figures…',
      unavailable: 'The visit figures could not be loaded. Trying again later.' }
  };
  // Inline SVG icons (24x24, stroked with the accent colour), one per row.
  var ICONS = {
    online: '<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6"/>' +
      '<path d="M16 4.6a3.5 3.5 0 0 1 0 6.8M18.5 14.4c1.8.8 3 2.9 3 5.6"/>',
    today: '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>' +
      '<rect x="7" y="13" width="4" height="4" rx=".6"/>',
    this_month: '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>' +
      '<path d="M7 14h2M11 14h2M15 14h2M7 17.5h2M11 17.5h2"/>',
    last_month: '<path d="M3.5 12a8.5 8.5 0 1 0 2.5-6"/><path d="M3 4v4.5h4.5"/><path d="M12 7.5V12l3 2"/>',
    total: '<path d="M4 20h16"/><path d="M7 16v-5M12 16V6M17 16V9"/>',
    members: '<circle cx="12" cy="8" r="4"/><path d="M4.5 21c0-4.2 3.4-7 7.5-7s7.5 2.8 7.5 7"/>',
    guests: '<circle cx="12" cy="12" r="9"/><path d="M9.6 9.4a2.5 2.5 0 1 1 3.4 2.3c-.6.3-1 .8-1 1.5v.6"/>' +
      '<path d="M12 16.8v.2"/>',
    bots: '<rect x="5" y="8" width="14" height="11" rx="2"/><path d="M12 4.5V8M9 12.5v1M15 12.5v1M9.5 16h5"/>'
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
      member: member, referrer: document.referrer || null, id: randomId(), seq: nextSeq(),
      query: location.search.slice(0, 2048) || null // statistics: only its utm_* fields are read
    };
  }

  // A call to the counter that is given up after TIMEOUT_MS (a slow counter must not leave
  // the block loading forever).
  function timed() {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : 0;
    return { signal: controller ? controller.signal : undefined, done: function () { clearTimeout(timer); } };
  }

  // text/plain keeps the request "simple": no CORS preflight, and sendBeacon-compatible.
  function post(hit, withStats) {
    var url = base + '/v1/hit' + (withStats ? '?stats=1' : '');
    var body = JSON.stringify(hit);
    if (!window.fetch) {
      var sent = navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      return Promise.resolve({ ok: !!sent, retry: !sent, stats: null });
    }
    var call = timed();
    return fetch(url, {
      method: 'POST', body: body, keepalive: true, mode: 'cors', credentials: 'omit', signal: call.signal,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' }
    }).then(function (response) {
      call.done();
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
      call.done();
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

  // ---- the block ----------------------------------------------------------------------
  var view = null;  // {host, block, values: {field: element}, status}

  function shadowOf(element) {
    if (element.shadowRoot) { return element.shadowRoot; }
    try { return element.attachShadow({ mode: 'open' }); } catch (e) {
      var inner = document.createElement('div');  // elements that cannot host a shadow root
      element.textContent = '';
      element.appendChild(inner);
      return inner.attachShadow({ mode: 'open' });
    }
  }

  function svgIcon(name) {
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'pp-icon');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.innerHTML = ICONS[name];
    return svg;
  }

  function row(field, label, sub) {
    var item = document.createElement('li');
    item.className = sub ? 'pp-row pp-sub' : 'pp-row';
    item.setAttribute('data-field', field);
    item.appendChild(svgIcon(field));
    var name = document.createElement('span');
    name.className = 'pulse-label';
    name.textContent = label;
    name.title = label;
    var value = document.createElement('span');
    value.className = 'pulse-value';
    value.textContent = '…';
    item.appendChild(name);
    item.appendChild(value);
    return { item: item, value: value };
  }

  function build() {
    var host = target();
    if (!host) { return null; }
    var root = shadowOf(host);
    root.textContent = '';
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = base + '/widget.css';
    var block = document.createElement('section');
    block.className = 'pp-block pp-loading';
    block.setAttribute('lang', lang);
    block.setAttribute('aria-label', TEXT[lang].title);
    block.setAttribute('aria-busy', 'true');
    block.hidden = true;  // until its stylesheet is in, so it never shows unstyled
    function reveal() { block.hidden = false; }
    link.addEventListener('load', reveal);
    link.addEventListener('error', reveal);
    setTimeout(reveal, 3000);
    var list = document.createElement('ul');
    list.className = 'pp-rows';
    var values = {};
    LABELS[lang].forEach(function (pair) {
      var made = row(pair[0], pair[1], false);
      values[pair[0]] = made.value;
      list.appendChild(made.item);
      if (pair[0] === 'online' && breakdown) {
        SUB_LABELS[lang].forEach(function (sub) {
          var part = row(sub[0], sub[1], true);
          values[sub[0]] = part.value;
          list.appendChild(part.item);
        });
      }
    });
    var status = document.createElement('p');
    status.className = 'pp-status';
    status.setAttribute('role', 'status');
    status.textContent = TEXT[lang].loading;
    block.appendChild(list);
    block.appendChild(status);
    root.appendChild(link);
    root.appendChild(block);
    host.setAttribute('data-state', 'loading');
    return { host: host, block: block, values: values, status: status };
  }

  function number(stats, field) {
    var source = field === 'members' || field === 'guests' || field === 'bots' ? stats.online_breakdown : stats;
    return source && typeof source[field] === 'number' ? source[field] : null;
  }

  var shownAt = 0;  // performance.now() of the figures on screen
  function render(stats) {
    if (!view) { return; }
    var ok = !!stats && typeof stats.total === 'number';
    if (!ok && shownAt) { return; }  // keep the last good figures; a later refresh replaces them
    var format = new Intl.NumberFormat(LOCALES[lang]);
    Object.keys(view.values).forEach(function (field) {
      var value = ok ? number(stats, field) : null;
      view.values[field].textContent = value === null ? '—' : format.format(value);
    });
    view.block.classList.remove('pp-loading');
    view.block.classList.toggle('pp-unavailable', !ok);
    view.block.setAttribute('aria-busy', 'false');
    view.status.textContent = ok ? '' : TEXT[lang].unavailable;
    view.status.hidden = ok;
    view.host.setAttribute('data-state', ok ? 'ready' : 'unavailable');
    if (ok) { shownAt = performance.now(); }
  }

  function fetchStats() {
    if (!window.fetch) { return Promise.resolve(null); }
    var call = timed();
    return fetch(base + '/v1/stats?site=' + encodeURIComponent(site),
      { mode: 'cors', credentials: 'omit', signal: call.signal })
      .then(function (r) { call.done(); return r.ok ? r.json() : null; }, function () { call.done(); return null; })
      .then(null, function () { return null; });
  }

  function showFigures(result) {
    if (result && result.stats) { render(result.stats); return; }
    fetchStats().then(render);
  }

  // ---- refreshes: every interval while visible, and at once on coming back ------------
  var refreshTimer = 0, refreshedAt = -Infinity;
  function refresh(kind, keep) {
    clearTimeout(refreshTimer);
    refreshedAt = performance.now();
    refreshTimer = setTimeout(tick, HEARTBEAT_MS);
    return send(kind, true, keep).then(showFigures);
  }

  function tick() {
    if (document.visibilityState === 'visible') { refresh('heartbeat', false); }
    else { refreshTimer = 0; }  // resumed by visibilitychange
  }

  function start() {
    view = build();
    refresh('pageview', true);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState !== 'visible') { return; }
      if (performance.now() - refreshedAt >= VISIBLE_REFRESH_MS) { refresh('heartbeat', false); }
      else if (!refreshTimer) { refreshTimer = setTimeout(tick, HEARTBEAT_MS); }
    });
    window.addEventListener('online', flushQueue);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
  window.portalPulse = { flush: flushQueue, queued: readQueue };
})();
