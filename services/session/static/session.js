/*! portal-pulse session.js — inactivity prompt kept by the server (plain ES2017, no build step).
 *
 * <script src="https://pulse.example/session.js" data-session="<id>" data-lang="vi"
 *         data-logout-url="/signed-out" data-throttle="30" async></script>
 *
 * The server is the source of truth. Every view of the session (HTTP answers, server-sent
 * events, other tabs over a BroadcastChannel) carries the session's `version` and the server's
 * `server_time`; the page keeps the prompt time and the deadline in server time, orders views
 * by version (a stale event never moves the countdown back, whatever the clocks of the
 * processes that answered) and maps server time onto performance.now() from the last
 * HTTP answer. A jump between the wall clock and the monotonic clock (a suspended laptop, a
 * throttled tab), a wake-up or coming back online re-syncs from the server. Failed calls are
 * retried with backoff. The page leaves only when the server says the session is over.
 * Styles come from the service's /session.css (no inline styles: works under a strict CSP).
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
  var maxThrottleMs = Math.max(0.5, Number(script.getAttribute('data-throttle')) || 30) * 1000;
  var api = origin + '/v1/sessions/' + encodeURIComponent(sessionId);
  var REQUEST_TIMEOUT_MS = 8000;
  var TICK_MS = 1000;
  var JUMP_MS = 2000;           // wall clock and monotonic clock disagree by more: re-sync
  var GAP_MS = 5000;            // a tick this late (throttled or frozen tab): re-sync
  var TYPING_MS = 3000;         // a key pressed this recently: the prompt does not take focus
  var ANNOUNCE_AT = [30, 10];   // seconds left at which the remaining time is announced
  var PROMPT_POLL_MS = 5000;    // while the prompt is open, ask the server this often (events may stop)

  var TEXT = {
    vi: {
      message: 'Bạn đã không sử dụng Site, Bấm vào đây để duy trì trạng thái đăng nhập.',
      before: 'Thời gian chờ: ', after: ' giây',
      unreachable: 'Không kết nối được với máy chủ đăng nhập. Đang thử lại…'
    },
    en: {
      message: 'You have not used the site. Click here to stay signed in.',
      before: 'Time left: ', after: ' seconds',
      unreachable: 'The sign-in service cannot be reached. Trying again…'
    }
  }[lang];

  var snap = null;           // {state, at, deadline, promptAt} in server seconds
  var sync = null;           // {server, mono}: server time at a performance.now() reading
  var throttleMs = maxThrottleMs;
  var finished = false;
  var reachable = true;
  var timer = 0;
  var source = null;
  var channel = null;
  try { channel = new BroadcastChannel('portal-pulse:' + sessionId); } catch (e) { channel = null; }

  function post(message) {
    if (channel) { try { channel.postMessage(message); } catch (e) { /* closed */ } }
  }

  function serverNow() {
    return sync ? sync.server + (performance.now() - sync.mono) / 1000 : 0;
  }

  // ---- the dialog (its looks: /session.css) ------------------------------------------
  var dialog = null, box = null, button = null, secondsEl = null, notice = null, live = null;
  var previousFocus = null, announced = {}, focusDeferred = false, lastKeyAt = -Infinity;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function stylesheet() {
    if (document.querySelector('link[data-portal-pulse-session]')) return;
    var link = element('link');
    link.rel = 'stylesheet';
    link.href = origin + '/session.css';
    link.setAttribute('data-portal-pulse-session', '');
    (document.head || document.documentElement).appendChild(link);
  }

  function build() {
    dialog = element('div', 'pp-session');
    dialog.hidden = true;
    dialog.setAttribute('lang', lang);
    box = element('div', 'pp-session-dialog');
    box.setAttribute('role', 'alertdialog');
    box.setAttribute('aria-modal', 'true');
    box.setAttribute('aria-labelledby', 'pp-session-message');
    box.setAttribute('aria-describedby', 'pp-session-count');
    box.setAttribute('lang', lang);
    box.tabIndex = -1;
    button = element('button', 'pp-keepalive');
    button.type = 'button';
    var message = element('span', '', TEXT.message);
    message.id = 'pp-session-message';
    button.appendChild(message);
    var count = element('p', 'pp-count');
    count.id = 'pp-session-count';
    count.appendChild(document.createTextNode(TEXT.before));
    secondsEl = element('span', 'pp-seconds');
    count.appendChild(secondsEl);
    count.appendChild(document.createTextNode(TEXT.after));
    notice = element('p', 'pp-notice', TEXT.unreachable);
    notice.hidden = true;
    live = element('p', 'pp-live');   // polite, separate, changed only at a few moments
    live.setAttribute('role', 'status');
    live.setAttribute('aria-live', 'polite');
    live.setAttribute('aria-atomic', 'true');
    box.appendChild(button);
    box.appendChild(count);
    box.appendChild(notice);
    box.appendChild(live);
    dialog.appendChild(box);
    button.addEventListener('click', keepAlive);
    box.addEventListener('keydown', function (event) {
      // Escape must not dismiss the prompt silently: only the click keeps the session.
      if (event.key === 'Escape' || event.key === 'Tab') { event.preventDefault(); button.focus(); }
    });
    document.body.appendChild(dialog);
  }

  function promptOpen() { return !!dialog && !dialog.hidden; }

  function announce(text) {
    live.textContent = '';
    setTimeout(function () { if (promptOpen()) live.textContent = text; }, 100);
  }

  function timeText(seconds) { return TEXT.before + seconds + TEXT.after; }

  function isTyping() {
    var active = document.activeElement;
    var editable = active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
    return performance.now() - lastKeyAt < TYPING_MS || (!!editable && performance.now() - lastKeyAt < 60000);
  }

  function showPrompt() {
    if (!dialog) build();
    render();
    if (!dialog.hidden) return;
    dialog.hidden = false;
    announced = {};
    var left = secondsLeft();
    ANNOUNCE_AT.forEach(function (at) { if (left <= at + 2) announced[at] = true; });
    previousFocus = document.activeElement;
    // A user who is typing keeps the focus (and every keystroke); Tab brings them here.
    focusDeferred = isTyping();
    if (!focusDeferred) button.focus();
    announce((focusDeferred ? TEXT.message + ' ' : '') + timeText(left) + (reachable ? '' : '. ' + TEXT.unreachable));
    notice.hidden = reachable;
  }

  function hidePrompt() {
    if (!promptOpen()) return;
    dialog.hidden = true;
    live.textContent = '';
    if (!focusDeferred && previousFocus && previousFocus.focus) {
      try { previousFocus.focus(); } catch (e) { /* gone */ }
    }
    previousFocus = null;
    focusDeferred = false;
  }

  function secondsLeft() {
    return snap ? Math.max(0, Math.ceil(snap.deadline - serverNow())) : 0;
  }

  function render() {
    if (!secondsEl) return;
    var left = secondsLeft();
    var text = String(left);
    if (secondsEl.textContent !== text) secondsEl.textContent = text;
    if (!promptOpen()) return;
    ANNOUNCE_AT.forEach(function (at) {
      if (!announced[at] && left <= at) { announced[at] = true; announce(timeText(left)); }
    });
  }

  function setReachable(yes) {
    if (reachable === yes) return;
    reachable = yes;
    if (!promptOpen()) return;
    notice.hidden = yes;
    if (!yes) announce(TEXT.unreachable);
  }

  document.addEventListener('focusin', function (event) {
    if (promptOpen() && !dialog.contains(event.target)) button.focus();
  });
  document.addEventListener('keydown', function (event) {
    lastKeyAt = performance.now();
    if (event.key === 'Tab' && promptOpen() && !dialog.contains(document.activeElement)) {
      event.preventDefault();
      focusDeferred = false;
      button.focus();
    }
  }, true);

  // ---- state from the server --------------------------------------------------------
  function terminal(state) { return state === 'expired' || state === 'ended'; }

  function apply(view) {
    if (finished || !view || !view.state) return;
    if (terminal(view.state)) { finish(true); return; }
    var at = Number(view.server_time) || 0;
    var version = Number(view.version) || 0;
    // Older than what the page shows: ignore. The session's version orders views (it goes
    // up with every change, whichever process made it); the time only orders two views of
    // one version (processes' clocks may disagree by a few seconds).
    if (snap && (version < snap.version || (version === snap.version && at < snap.at))) return;
    snap = {
      state: view.state, at: at, version: version,
      deadline: at + Number(view.remaining || 0), promptAt: at + Number(view.prompt_in || 0)
    };
    if (!sync) sync = { server: at, mono: performance.now() };
    else if (at > serverNow() + 0.5) { sync = { server: at, mono: performance.now() }; resync(); }  // clock lags
    var activeSeconds = Number(view.idle_timeout) - Number(view.prompt_seconds);
    if (activeSeconds > 0) throttleMs = Math.max(500, Math.min(maxThrottleMs, activeSeconds * 1000 / 3));
    decide();
  }

  // What the page shows follows the server's view projected to now: the prompt when the
  // server said so, or when it is due and the server cannot be asked.
  function decide() {
    if (finished || !snap) return;
    var now = serverNow();
    if (snap.state === 'prompt') showPrompt();
    else if (now < snap.promptAt) hidePrompt();
    else if (!reachable) showPrompt();
    else resync();
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (finished) return;
    var delay = TICK_MS;
    if (promptOpen() && snap) {
      var untilSecond = ((snap.deadline - serverNow()) * 1000) % 1000;
      delay = (untilSecond > 0 ? untilSecond : 1000) + 20;
    } else if (snap && snap.state === 'active') {
      delay = Math.min(TICK_MS, Math.max(50, (snap.promptAt - serverNow()) * 1000 + 50));
    }
    timer = setTimeout(tick, delay);
  }

  var lastTick = null;
  function tick() {
    var wall = Date.now(), mono = performance.now();
    if (lastTick) {
      var gap = mono - lastTick.mono;
      if (Math.abs(wall - lastTick.wall - gap) > JUMP_MS || gap > GAP_MS) resync();
    }
    lastTick = { wall: wall, mono: mono };
    if (snap && promptOpen() && (serverNow() >= snap.deadline || mono - askedAt >= PROMPT_POLL_MS)) {
      resync();  // the server decides the end, and says whether it can still be reached
    }
    render();
    decide();
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

  // One call to the service: {status, body} for a JSON answer, null when the session is
  // over (the page leaves), a rejection for network errors, timeouts and 5xx.
  function request(method, suffix) {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var abort = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    var sent = performance.now();
    return fetch(api + suffix, {
      method: method, mode: 'cors', credentials: 'omit', cache: 'no-store',
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      clearTimeout(abort);
      if (response.status === 404 || response.status === 410) { setReachable(true); finish(true); return null; }
      if (response.status >= 500 || response.status === 429) throw new Error('HTTP ' + response.status);
      return response.json().then(function (body) {
        setReachable(true);
        if (response.status === 200 && body && body.server_time) {
          var received = performance.now();
          sync = { server: Number(body.server_time), mono: received - (received - sent) / 2 };
        }
        return { status: response.status, body: body };
      });
    }, function (error) { clearTimeout(abort); throw error; });
  }

  function backoff(attempt) {
    return Math.min(10000, 500 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4);
  }

  function failed() {
    setReachable(false);
    if (snap && !promptOpen() && serverNow() >= snap.promptAt) showPrompt();
  }

  var resyncing = false, resyncAgain = false, resyncAttempt = 0, resyncTimer = 0, askedAt = -Infinity;
  function resync() {
    if (finished) return;
    if (resyncing) { resyncAgain = true; return; }
    resyncing = true;
    askedAt = performance.now();
    clearTimeout(resyncTimer);
    request('GET', '').then(function (reply) {
      resyncing = false;
      resyncAttempt = 0;
      if (reply && reply.status === 200) apply(reply.body);
      if (resyncAgain) { resyncAgain = false; resync(); }
    }, function () {
      resyncing = false;
      resyncAgain = false;
      failed();
      resyncTimer = setTimeout(resync, backoff(resyncAttempt++));
    });
  }

  var keepWanted = false, keepAttempt = 0, keepTimer = 0, keeping = false;
  function keepAlive() {
    if (finished) return;
    keepWanted = true;
    keepAttempt = 0;
    sendKeepAlive();
  }

  function sendKeepAlive() {
    if (finished || keeping || !keepWanted) return;
    keeping = true;
    clearTimeout(keepTimer);
    request('POST', '/keepalive').then(function (reply) {
      keeping = false;
      keepWanted = false;
      if (reply && reply.status === 200) { apply(reply.body); share(reply.body); }
      else if (reply) resync();
    }, function () {
      keeping = false;
      failed();  // the click is kept and sent again until the server answers
      keepTimer = setTimeout(sendKeepAlive, backoff(keepAttempt++));
    });
  }

  function share(view) {
    post({ kind: 'snapshot', snapshot: view });
  }

  // ---- activity (throttled to a third of the active window, and a trailing report) ----
  var lastReport = -Infinity, pending = false, activityTimer = 0, reportAttempt = 0, reporting = false;

  function onActivity(event) {
    if (event.type === 'focus' && event.target !== window) return;
    if (finished || promptOpen() || !snap) return;  // in the prompt only the click counts
    pending = true;
    planReport();
  }

  function planReport() {
    if (!pending || reporting || finished) return;
    var wait = lastReport + throttleMs - performance.now();
    clearTimeout(activityTimer);
    if (wait > 0) { activityTimer = setTimeout(planReport, wait); return; }
    if (promptOpen()) { pending = false; return; }
    pending = false;
    reporting = true;
    lastReport = performance.now();
    post({ kind: 'reported' });
    request('POST', '/activity').then(function (reply) {
      reporting = false;
      reportAttempt = 0;
      if (!reply) return;
      if (reply.status === 200) { apply(reply.body); share(reply.body); } else if (reply.status === 409) resync();
    }, function () {
      reporting = false;
      failed();
      pending = true;  // report again once the service answers
      lastReport = performance.now() - throttleMs + backoff(reportAttempt++);
      planReport();
    });
  }

  ['pointerdown', 'mousemove', 'keydown', 'scroll', 'touchstart', 'wheel', 'focus'].forEach(function (type) {
    window.addEventListener(type, onActivity, { capture: true, passive: true });
  });

  // ---- other tabs -------------------------------------------------------------------
  if (channel) {
    channel.onmessage = function (event) {
      var data = event.data || {};
      if (data.kind === 'snapshot') apply(data.snapshot);
      else if (data.kind === 'end') finish(false);
      else if (data.kind === 'reported') lastReport = performance.now();
    };
  }

  // ---- wake-ups re-sync from the server -------------------------------------------
  document.addEventListener('visibilitychange', function () { if (!document.hidden) resync(); });
  document.addEventListener('resume', resync);
  window.addEventListener('pageshow', function (event) { if (event.persisted) connect(); resync(); });
  window.addEventListener('online', function () { connect(); resync(); });
  window.addEventListener('focus', resync);

  // ---- server-sent events -----------------------------------------------------------
  var connectTimer = 0;
  function connect() {
    if (finished || typeof EventSource === 'undefined') return;
    clearTimeout(connectTimer);
    if (source) source.close();
    source = new EventSource(api + '/events');
    var opened = false;
    function onEvent(event) {
      var view;
      try { view = JSON.parse(event.data); } catch (e) { return; }
      apply(view);
      if (event.type !== 'state') share(view);
    }
    ['state', 'prompt', 'extended', 'expired', 'ended'].forEach(function (type) {
      source.addEventListener(type, onEvent);
    });
    source.onopen = function () { if (opened) resync(); opened = true; };
    source.onerror = function () {
      if (finished) return;
      resync();
      if (source.readyState === EventSource.CLOSED) {
        // The server refused (404, 429, 503): it was asked directly; try the stream later.
        connectTimer = setTimeout(connect, 5000);
      }
    };
  }

  function start() {
    stylesheet();
    build();
    connect();
    resync();
  }
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
})();
