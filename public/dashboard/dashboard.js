// The staff dashboard: signs in through the API, then polls the monitoring endpoints every few
// seconds (`?every=<ms>` changes it) and draws them with uPlot. The access token lives in
// sessionStorage; a 401 from any endpoint brings the sign-in form back.
//
// Each chart's element carries its latest numbers as data attributes (`data-latest`, and one per
// series, e.g. `data-api`), so what the charts show can be read without looking at the canvas.
(function () {
  'use strict';

  var TOKEN_KEY = 'pasargad.dashboard.access';
  var EVERY = Math.max(500, Number(new URLSearchParams(location.search).get('every')) || 3000);
  // Points kept for the charts drawn from polled values (about 10 minutes at the default pace).
  var HISTORY = 200;
  var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2'];
  var MB = 1024 * 1024;

  function $(id) {
    return document.getElementById(id);
  }

  function fmt(v) {
    if (v == null || Number.isNaN(v)) return '–';
    var a = Math.abs(v);
    return a >= 100 ? String(Math.round(v)) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function short(text, max) {
    text = String(text == null ? '' : text).replace(/\s+/g, ' ');
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  // ---- API ----------------------------------------------------------------------------------

  function HttpError(status, message) {
    this.status = status;
    this.message = message;
  }

  function api(path, body) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    var headers = { accept: 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(path, { method: body === undefined ? 'GET' : 'POST', headers: headers, body: body === undefined ? undefined : JSON.stringify(body) }).then(function (res) {
      return res.json().then(
        function (data) {
          // The system report is still worth drawing when it says "unhealthy" (503).
          if (res.ok || (res.status === 503 && data && data.checks)) return data;
          // The API's errors read `{ error: true, message, code }` (or DRF's `{ detail }`).
          var message = data && (typeof data.message === 'string' ? data.message : data.detail);
          throw new HttpError(res.status, typeof message === 'string' ? message : path + ': HTTP ' + res.status);
        },
        function () {
          throw new HttpError(res.status, path + ': HTTP ' + res.status);
        },
      );
    });
  }

  // ---- Charts -------------------------------------------------------------------------------

  // uPlot needs pixel sizes: each chart follows its element's width.
  function follow(el, u, height) {
    new ResizeObserver(function () {
      var width = el.clientWidth;
      if (width > 0 && width !== u.width) u.setSize({ width: width, height: height });
    }).observe(el);
  }

  function publish(el, keys, latest) {
    keys.forEach(function (key, i) {
      var v = latest[i];
      if (v == null) delete el.dataset[key];
      else el.dataset[key] = String(v);
    });
    if (latest[0] != null) el.dataset.latest = String(latest[0]);
  }

  /** A time chart: `lines` are `{ key, label, scale? }`; `set(times in s, columns)`. `o.max` fixes the top (percentages). */
  function lineChart(id, lines, o) {
    o = o || {};
    var el = $(id);
    var height = o.height || 180;
    var scales = { x: { time: true } };
    lines.forEach(function (l) {
      scales[l.scale || 'y'] = { range: function (u, min, max) { return [0, o.max || (max > 0 ? max * 1.1 : 1)]; } };
    });
    var u = new uPlot(
      {
        width: el.clientWidth || 400,
        height: height,
        scales: scales,
        series: [{}].concat(
          lines.map(function (l, i) {
            return { label: l.label, scale: l.scale || 'y', stroke: COLORS[i % COLORS.length], width: 2, points: { show: false }, value: function (u, v) { return fmt(v); } };
          }),
        ),
        axes: [{}, { size: 50 }],
      },
      [[]].concat(lines.map(function () { return []; })),
      el,
    );
    follow(el, u, height);
    return {
      set: function (xs, columns) {
        u.setData([xs].concat(columns));
        publish(el, lines.map(function (l) { return l.key; }), columns.map(function (c) { return c.length ? c[c.length - 1] : null; }));
      },
    };
  }

  // The label axis as wide as its widest label (after uPlot's axis-autosize demo).
  function labelWidth(u, values, axisIdx, cycle) {
    var axis = u.axes[axisIdx];
    if (cycle > 1) return axis._size;
    u.ctx.font = axis.font[0];
    var widest = (values || []).reduce(function (w, v) { return Math.max(w, u.ctx.measureText(v).width); }, 0);
    return Math.ceil(axis.ticks.size + axis.gap + widest / devicePixelRatio) + 4;
  }

  /** Horizontal bars with a label each: `set(labels, values)`. */
  function barChart(id, label, color) {
    var el = $(id);
    var labels = [];
    var height = 220;
    var u = new uPlot(
      {
        width: el.clientWidth || 400,
        height: height,
        scales: {
          // Bars run left to right, the first (largest) at the top.
          x: { time: false, ori: 1, dir: -1, range: function () { return [-0.5, Math.max(labels.length, 1) - 0.5]; } },
          y: { ori: 0, range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } },
        },
        series: [
          { label: 'name', value: function (u, i) { return i == null ? '' : labels[i] || ''; } },
          { label: label, stroke: color, fill: color + 'aa', width: 1, points: { show: false }, paths: uPlot.paths.bars({ size: [0.7, 28] }), value: function (u, v) { return fmt(v); } },
        ],
        axes: [
          {
            side: 3,
            size: labelWidth,
            grid: { show: false },
            splits: function () { return labels.map(function (_, i) { return i; }); },
            values: function (u, splits) { return splits.map(function (i) { return short(labels[i], 30); }); },
          },
          { side: 2 },
        ],
      },
      [[], []],
      el,
    );
    follow(el, u, height);
    return {
      set: function (names, values) {
        labels = names;
        u.setData([names.map(function (_, i) { return i; }), values]);
        // The same number of bars keeps the same scale, and uPlot then keeps the old labels.
        u.redraw(false, true);
        el.dataset.count = String(names.length);
        el.dataset.latest = String(values.length ? values[0] : 0);
      },
    };
  }

  /** Values polled over time, oldest first, as uPlot columns. */
  function History(size) {
    this.size = size;
    this.times = [];
    this.columns = {};
  }
  History.prototype.push = function (t, values) {
    var self = this;
    this.times.push(t);
    Object.keys(values).forEach(function (key) {
      // A series that appears late starts with gaps, so every column lines up with the times.
      var column = self.columns[key] || (self.columns[key] = self.times.slice(0, -1).map(function () { return null; }));
      column.push(values[key]);
    });
    Object.keys(this.columns).forEach(function (key) {
      if (self.columns[key].length < self.times.length) self.columns[key].push(null);
    });
    if (this.times.length > this.size) {
      this.times.shift();
      Object.keys(this.columns).forEach(function (key) { self.columns[key].shift(); });
    }
  };
  History.prototype.get = function (keys) {
    var self = this;
    return keys.map(function (k) { return self.columns[k] || self.times.map(function () { return null; }); });
  };

  // ---- Panels -------------------------------------------------------------------------------

  var charts = {};
  var cacheHistory = new History(HISTORY);
  var systemHistory = new History(HISTORY);

  function caption(id, text) {
    $('caption-' + id).textContent = text;
  }

  function renderRequests(r) {
    var xs = r.series.map(function (p) { return p.t / 1000; });
    var column = function (key) { return r.series.map(function (p) { return p[key]; }); };
    var minute = r.windows['1m'];
    var five = r.windows['5m'];
    charts.rps = charts.rps || lineChart('chart-rps', [{ key: 'requests', label: 'requests/s' }, { key: 'errors', label: '5xx per 5 s', scale: 'errors' }]);
    charts.rps.set(xs, [column('requests'), column('errors')]);
    $('chart-rps').dataset.latest = String(minute.requests_per_second);
    caption('rps', fmt(minute.requests_per_second) + ' requests/s over the last minute (' + minute.requests + ' requests, ' + minute.errors + ' errors); ' + fmt(five.requests_per_second) + '/s over 5 minutes');

    charts.latency = charts.latency || lineChart('chart-latency', [{ key: 'p50', label: 'p50' }, { key: 'p95', label: 'p95' }, { key: 'p99', label: 'p99' }]);
    charts.latency.set(xs, [column('p50'), column('p95'), column('p99')]);
    var l = minute.latency_ms;
    var el = $('chart-latency');
    el.dataset.latest = String(l.p95);
    caption('latency', 'Last minute: p50 ' + fmt(l.p50) + ' ms, p95 ' + fmt(l.p95) + ' ms, p99 ' + fmt(l.p99) + ' ms, max ' + fmt(l.max) + ' ms');

    var slow = five.slow_routes;
    charts.routes = charts.routes || barChart('chart-routes', 'p95 ms', COLORS[3]);
    charts.routes.set(slow.map(function (s) { return s.route; }), slow.map(function (s) { return s.p95_ms; }));
    caption('routes', slow.length ? slow.slice(0, 3).map(function (s) { return s.route + ': ' + fmt(s.p95_ms) + ' ms (' + s.requests + ' requests)'; }).join(' · ') : 'No requests in the last 5 minutes.');
  }

  function renderCache(c) {
    var names = Object.keys(c.stores);
    var values = {};
    names.forEach(function (name) {
      values[name] = Math.round(c.stores[name].hit_rate * 1000) / 10;
    });
    cacheHistory.push(Date.now() / 1000, values);
    charts.cache = charts.cache || lineChart('chart-cache', names.map(function (n) { return { key: n, label: n }; }), { max: 100 });
    charts.cache.set(cacheHistory.times, cacheHistory.get(names));
    caption('cache', names.map(function (n) {
      var s = c.stores[n];
      return n + ': ' + (s.available ? '' : 'unavailable, ') + fmt(s.hit_rate * 100) + '% (' + s.hits + ' hits, ' + s.misses + ' misses, ' + s.keys + ' keys, ' + fmt(s.memory_bytes / MB) + ' MB, ' + s.backend + ')';
    }).join(' · '));
  }

  function renderDatabase(d) {
    var slow = d.slow_statements.slice(0, 10);
    charts.statements = charts.statements || barChart('chart-statements', 'total ms', COLORS[1]);
    charts.statements.set(slow.map(function (s) { return s.statement; }), slow.map(function (s) { return s.total_ms; }));
    var st = d.statements;
    caption('statements', d.kind + ': ' + st.count + ' statements, mean ' + fmt(st.mean_ms) + ' ms; ' + (slow.length ? 'slowest: ' + short(slow[0].statement, 80) + ' (' + slow[0].count + '×, max ' + fmt(slow[0].max_ms) + ' ms)' : 'none slower than ' + d.slow_query_ms + ' ms'));
  }

  function renderSystem(s) {
    var badge = $('status');
    badge.textContent = s.status;
    badge.dataset.status = s.status;
    var failing = Object.keys(s.checks).filter(function (k) { return s.checks[k].status !== 'healthy'; });
    badge.title = failing.length ? 'Not healthy: ' + failing.join(', ') : 'Every check is healthy';

    var queues = (s.checks.queues && s.checks.queues.queues) || [];
    charts.queues = charts.queues || barChart('chart-queues', 'jobs', COLORS[4]);
    charts.queues.set(queues.map(function (q) { return q.queue; }), queues.map(function (q) { return q.waiting + q.active + q.delayed; }));
    caption('queues', queues.length ? queues.map(function (q) { return q.queue + ': ' + q.waiting + ' waiting, ' + q.active + ' active, ' + q.delayed + ' delayed, ' + q.failed + ' failed'; }).join(' · ') : 'Queues: ' + ((s.checks.queues && s.checks.queues.error) || 'none'));

    var p = s.process;
    var h = s.host;
    systemHistory.push(Date.now() / 1000, { cpu: p.cpu_percent, rss: p.memory.rss_bytes / MB, heap: p.memory.heap_used_bytes / MB, p50: p.event_loop_delay_ms.p50, p99: p.event_loop_delay_ms.p99 });
    charts.cpu = charts.cpu || lineChart('chart-cpu', [{ key: 'cpu', label: 'CPU %' }]);
    charts.cpu.set(systemHistory.times, systemHistory.get(['cpu']));
    caption('cpu', fmt(p.cpu_percent) + '% of one core · ' + h.cpus + ' CPUs, load ' + h.load_average.join(' '));
    charts.memory = charts.memory || lineChart('chart-memory', [{ key: 'rss', label: 'RSS' }, { key: 'heap', label: 'heap used' }]);
    charts.memory.set(systemHistory.times, systemHistory.get(['rss', 'heap']));
    caption('memory', 'RSS ' + fmt(p.memory.rss_bytes / MB) + ' MB, heap ' + fmt(p.memory.heap_used_bytes / MB) + ' MB · host ' + fmt(h.memory_free_bytes / MB) + ' of ' + fmt(h.memory_total_bytes / MB) + ' MB free');
    charts.loop = charts.loop || lineChart('chart-loop', [{ key: 'p99', label: 'p99' }, { key: 'p50', label: 'p50' }]);
    charts.loop.set(systemHistory.times, systemHistory.get(['p99', 'p50']));
    caption('loop', 'p50 ' + fmt(p.event_loop_delay_ms.p50) + ' ms, p99 ' + fmt(p.event_loop_delay_ms.p99) + ' ms, max ' + fmt(p.event_loop_delay_ms.max) + ' ms');
  }

  function renderBlocked(b) {
    var list = $('blocked');
    list.replaceChildren();
    $('blocked-count').textContent = '(' + b.count + ')';
    list.dataset.count = String(b.count);
    if (b.results.length === 0) {
      var none = document.createElement('li');
      none.className = 'none';
      none.textContent = 'None';
      list.append(none);
    }
    b.results.forEach(function (entry) {
      var li = document.createElement('li');
      var ip = document.createElement('code');
      ip.textContent = entry.ip;
      var until = document.createElement('time');
      until.dateTime = entry.expires_at;
      until.textContent = new Date(entry.expires_at).toLocaleString();
      li.append(ip, ' ' + entry.reason + ' — until ', until);
      list.append(li);
    });
  }

  // ---- Polling and sign-in ------------------------------------------------------------------

  var SOURCES = [
    ['/api/utils/monitoring/requests/', renderRequests],
    ['/api/utils/monitoring/cache/', renderCache],
    ['/api/utils/monitoring/database/', renderDatabase],
    ['/api/utils/monitoring/system/', renderSystem],
    ['/api/utils/rate-limits/blocked/', renderBlocked],
  ];
  var timer = null;
  // `live`: the panels are shown and polled; `running`: a poll is in flight (one at a time).
  var live = false;
  var running = false;

  function poll() {
    clearTimeout(timer);
    timer = null;
    if (running || !live) return;
    running = true;
    Promise.allSettled(SOURCES.map(function (s) { return api(s[0]); })).then(function (results) {
      running = false;
      if (!live) return;
      var refused = results.find(function (r) { return r.status === 'rejected' && (r.reason.status === 401 || r.reason.status === 403); });
      if (refused) return refused.reason.status === 401 ? signedOut('Your session has ended: sign in again.') : denied();
      var problems = [];
      results.forEach(function (r, i) {
        if (r.status === 'rejected') return problems.push(r.reason.message);
        try {
          SOURCES[i][1](r.value);
        } catch (err) {
          problems.push(SOURCES[i][0] + ': ' + err.message);
        }
      });
      $('updated').textContent = problems.length ? 'Update failed: ' + problems.join('; ') : 'Updated ' + new Date().toLocaleTimeString();
      $('updated').className = problems.length ? 'error' : '';
      timer = setTimeout(poll, EVERY);
    });
  }

  function show(view) {
    $('login').hidden = view !== 'login';
    $('denied').hidden = view !== 'denied';
    $('panels').hidden = view !== 'panels';
    $('sign-out').hidden = view === 'login';
  }

  function stop() {
    live = false;
    clearTimeout(timer);
    timer = null;
  }

  function signedOut(message) {
    stop();
    sessionStorage.removeItem(TOKEN_KEY);
    $('login-error').textContent = message || '';
    show('login');
  }

  function denied() {
    stop();
    show('denied');
  }

  function start() {
    if (!sessionStorage.getItem(TOKEN_KEY)) return signedOut();
    api('/api/users/profile/').then(
      function (profile) {
        if (!profile.is_staff) return denied();
        show('panels');
        live = true;
        poll();
      },
      function (err) {
        if (err.status === 401) return signedOut('Your session has ended: sign in again.');
        // The server is away (a restart): keep the token and try again.
        $('updated').textContent = 'Cannot reach the server (' + err.message + '); retrying';
        $('updated').className = 'error';
        timer = setTimeout(start, EVERY);
      },
    );
  }

  $('login').addEventListener('submit', function (event) {
    event.preventDefault();
    var form = event.target;
    $('login-error').textContent = '';
    sessionStorage.removeItem(TOKEN_KEY);
    api('/api/users/auth/login/', { email: form.email.value, password: form.password.value }).then(
      function (tokens) {
        sessionStorage.setItem(TOKEN_KEY, tokens.access);
        form.password.value = '';
        start();
      },
      function (err) {
        $('login-error').textContent = err.message;
      },
    );
  });

  $('sign-out').addEventListener('click', function () {
    signedOut();
  });

  $('clear-button').addEventListener('click', function () {
    var store = $('clear-store').value;
    var button = $('clear-button');
    var result = $('clear-result');
    button.disabled = true;
    result.textContent = 'Clearing ' + store + '…';
    api('/api/utils/monitoring/cache/clear/', { store: store }).then(
      function (r) {
        button.disabled = false;
        result.textContent = 'Cleared: ' + r.cleared.join(', ') + ' (' + new Date().toLocaleTimeString() + ')';
        result.dataset.cleared = r.cleared.join(',');
        poll();
      },
      function (err) {
        button.disabled = false;
        result.textContent = 'Not cleared: ' + err.message;
        delete result.dataset.cleared;
        if (err.status === 401) signedOut('Your session has ended: sign in again.');
      },
    );
  });

  start();
})();
