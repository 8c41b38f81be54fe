/*! portal-pulse session.js — inactivity prompt kept by the server (plain ES2017, no build step).
 *
 * <script src="https://pulse.example/session.js" data-session="<id>" data-lang="vi"
 *         data-logout-url="/signed-out" data-throttle="30" async></script>
 *
 * The server is the source of truth: this client shows what the session service says
 * (server-sent events, GET on wake-up), reports real user activity (throttled), sends the
 * keep-alive click, and keeps all tabs of the session in step over a BroadcastChannel.
 * Time is the server's `remaining` plus performance.now() deltas, never counted ticks.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var sessionId = script.getAttribute('data-session');
  if (!sessionId) return;
  var origin = new URL(script.src, location.href).origin;
  var lang = script.getAttribute('data-lang') === 'en' ? 'en' : 'vi';
  var logoutUrl = script.getAttribute('data-logout-url') || '/';
  var throttleMs = Math.max(1, Number(script.getAttribute('data-throttle')) || 30) * 1000;
  var api = origin + '/v1/sessions/' + encodeURIComponent(sessionId);

  var TEXT = {
    vi: {
      message: 'Bạn đã không sử dụng Site, Bấm vào đây để duy trì trạng thái đăng nhập.',
      before: 'Thời gian chờ: ', after: ' giây'
    },
    en: {
      message: 'You have not used the site. Click here to stay signed in.',
      before: 'Time left: ', after: ' seconds'
    }
  }[lang];

  var state = null;        // last state the server told us
  var deadline = 0;        // performance.now() at which remaining reaches 0
  var promptAt = 0;        // performance.now() at which the prompt is due
  var lastReport = -Infinity;
  var finished = false;
  var timer = 0;
  var source = null;
  var dialog = null, button = null, countEl = null, previousFocus = null;
  var channel = null;
  try { channel = new BroadcastChannel('portal-pulse:' + sessionId); } catch (e) { channel = null; }

  function post(message) {
    if (channel) { try { channel.postMessage(message); } catch (e) { /* closed */ } }
  }

  // ---- the dialog -------------------------------------------------------------------
  function style() {
    if (document.getElementById('pp-session-style')) return;
    var css = document.createElement('style');
    css.id = 'pp-session-style';
    css.textContent =
      '.pp-backdrop{position:fixed;inset:0;background:rgba(15,23,42,.55);display:flex;align-items:center;' +
      'justify-content:center;z-index:2147483000}.pp-backdrop[hidden]{display:none}' +
      '.pp-dialog{background:#fff;color:#0f172a;max-width:28rem;margin:1rem;padding:1.5rem;border-radius:.75rem;' +
      'box-shadow:0 20px 50px rgba(0,0,0,.35);font:16px/1.5 system-ui,sans-serif}' +
      '.pp-dialog button{display:block;width:100%;text-align:left;font:inherit;color:inherit;background:#eff6ff;' +
      'border:2px solid #1d4ed8;border-radius:.5rem;padding:1rem;cursor:pointer}' +
      '.pp-dialog button:focus{outline:3px solid #f59e0b;outline-offset:2px}' +
      '.pp-count{display:block;margin-top:.5rem;font-weight:700;color:#b91c1c}';
    document.head.appendChild(css);
  }

  function build() {
    style();
    dialog = document.createElement('div');
    dialog.className = 'pp-backdrop';
    dialog.hidden = true;
    var box = document.createElement('div');
    box.className = 'pp-dialog';
    box.setAttribute('role', 'alertdialog');
    box.setAttribute('aria-modal', 'true');
    box.setAttribute('aria-labelledby', 'pp-session-message');
    box.setAttribute('aria-describedby', 'pp-session-count');
    button = document.createElement('button');
    button.type = 'button';
    button.className = 'pp-keepalive';
    var message = document.createElement('span');
    message.id = 'pp-session-message';
    message.textContent = TEXT.message;
    var count = document.createElement('span');
    count.id = 'pp-session-count';
    count.className = 'pp-count';
    count.setAttribute('aria-live', 'assertive');
    count.setAttribute('aria-atomic', 'true');
    count.appendChild(document.createTextNode(TEXT.before));
    countEl = document.createElement('span');
    countEl.className = 'pp-seconds';
    count.appendChild(countEl);
    count.appendChild(document.createTextNode(TEXT.after));
    button.appendChild(message);
    button.appendChild(document.createTextNode(' '));
    button.appendChild(count);
    box.appendChild(button);
    dialog.appendChild(box);
    button.addEventListener('click', keepAlive);
    box.addEventListener('keydown', function (event) {
      // Escape must not dismiss the prompt silently: only the click keeps the session.
      if (event.key === 'Escape' || event.key === 'Tab') { event.preventDefault(); button.focus(); }
    });
    document.body.appendChild(dialog);
  }

  function promptOpen() { return !!dialog && !dialog.hidden; }

  function showPrompt() {
    if (!dialog) build();
    render();
    if (dialog.hidden) {
      previousFocus = document.activeElement;
      dialog.hidden = false;
      button.focus();
    }
  }

  function hidePrompt() {
    if (!promptOpen()) return;
    dialog.hidden = true;
    if (previousFocus && previousFocus.focus) { try { previousFocus.focus(); } catch (e) { /* gone */ } }
    previousFocus = null;
  }

  function secondsLeft() {
    return Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
  }

  function render() {
    if (!countEl) return;
    var text = String(secondsLeft());
    if (countEl.textContent !== text) countEl.textContent = text;
  }

  // Keep focus inside the modal while it is open.
  document.addEventListener('focusin', function (event) {
    if (promptOpen() && !dialog.contains(event.target)) button.focus();
  });

  // ---- state from the server --------------------------------------------------------
  function apply(snapshot, ageMs) {
    if (finished || !snapshot || !snapshot.state) return;
    var now = performance.now() - (ageMs || 0);
    state = snapshot.state;
    deadline = now + Number(snapshot.remaining || 0) * 1000;
    promptAt = now + Number(snapshot.prompt_in || 0) * 1000;
    if (state === 'expired' || state === 'ended') { finish(true); return; }
    if (state === 'prompt') showPrompt(); else hidePrompt();
    schedule();
  }

  function share(snapshot) {
    post({ kind: 'snapshot', snapshot: snapshot, sent: Date.now() });
  }

  function schedule() {
    clearTimeout(timer);
    if (finished) return;
    var now = performance.now();
    if (state === 'prompt') {
      render();
      if (now > deadline + 5000) { resync(); timer = setTimeout(schedule, 5000); return; }
      timer = setTimeout(schedule, Math.max(50, ((deadline - now) % 1000 + 1000) % 1000 + 20));
    } else {
      // Ask the server when the prompt should open (the event usually comes first).
      timer = setTimeout(function () { resync(); }, Math.max(250, promptAt - now + 250));
    }
  }

  function finish(broadcast) {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (source) source.close();
    if (broadcast) post({ kind: 'end' });
    if (channel) { try { channel.close(); } catch (e) { /* closed */ } }
    location.assign(logoutUrl);
  }

  function request(method, suffix) {
    return fetch(api + suffix, { method: method, mode: 'cors', credentials: 'omit', cache: 'no-store' })
      .then(function (response) {
        if (response.status === 404 || response.status === 410) { finish(true); return null; }
        return response.json().then(function (body) { return { status: response.status, body: body }; });
      });
  }

  var resyncing = false;
  function resync() {
    if (finished || resyncing) return;
    resyncing = true;
    request('GET', '').then(function (reply) {
      resyncing = false;
      if (reply && reply.status === 200) apply(reply.body, 0);
    }, function () { resyncing = false; if (!finished) timer = setTimeout(resync, 5000); });
  }

  function keepAlive() {
    if (finished) return;
    request('POST', '/keepalive').then(function (reply) {
      if (reply && reply.status === 200) { lastReport = performance.now(); apply(reply.body, 0); share(reply.body); }
    }, function () { /* offline: the prompt stays; the user can click again */ });
  }

  // ---- activity -----------------------------------------------------------------------
  function onActivity(event) {
    if (finished || promptOpen() || state === null) return;  // in the prompt only the click counts
    if (event.type === 'focus' && event.target !== window) return;
    var now = performance.now();
    if (now - lastReport < throttleMs) return;
    lastReport = now;
    post({ kind: 'reported' });
    request('POST', '/activity').then(function (reply) {
      if (!reply) return;
      if (reply.status === 200) { apply(reply.body, 0); share(reply.body); } else if (reply.status === 409) resync();
    }, function () { lastReport = -Infinity; });
  }

  ['pointerdown', 'mousemove', 'keydown', 'scroll', 'touchstart', 'focus'].forEach(function (type) {
    window.addEventListener(type, onActivity, { capture: true, passive: true });
  });

  // ---- other tabs -------------------------------------------------------------------
  if (channel) {
    channel.onmessage = function (event) {
      var data = event.data || {};
      if (data.kind === 'snapshot') apply(data.snapshot, Math.max(0, Date.now() - Number(data.sent || 0)));
      else if (data.kind === 'end') finish(false);
      else if (data.kind === 'reported') lastReport = performance.now();
    };
  }

  // ---- wake-ups re-sync from the server -------------------------------------------
  document.addEventListener('visibilitychange', function () { if (!document.hidden) resync(); });
  window.addEventListener('pageshow', function (event) { if (event.persisted) { connect(); } resync(); });
  window.addEventListener('focus', resync);

  // ---- server-sent events -----------------------------------------------------------
  function connect() {
    if (finished || typeof EventSource === 'undefined') return;
    if (source) source.close();
    source = new EventSource(api + '/events');
    var opened = false;
    function onEvent(event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      apply(data, 0);
      if (event.type !== 'state') share(data);
    }
    ['state', 'prompt', 'extended', 'expired', 'ended'].forEach(function (type) {
      source.addEventListener(type, onEvent);
    });
    source.onopen = function () { if (opened) resync(); opened = true; };
    source.onerror = function () {
      if (finished) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused (404, 429, 503): ask it directly and try again later.
        resync();
        setTimeout(connect, 5000);
      }
    };
  }

  function start() {
    connect();
    resync();
  }
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
})();
