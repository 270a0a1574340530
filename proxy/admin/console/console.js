// The sluice console (proxy/admin/console.h): one page over the admin API. It polls the API with
// the bearer token typed into it (kept in sessionStorage, sent as an Authorization header: no
// cookie, so no cross-site request can act with it) and draws what it gets. Every value from
// the API goes into the page as text (textContent, never parsed as HTML): a name with markup in it
// shows as the characters it is. No inline script or style: the Content-Security-Policy
// forbids both.
'use strict';

(function () {
  const POLL_MS = 2000;
  const CHART_EVERY_MS = { 3600: 20000, 86400: 120000 };
  const AUDIT_ROWS = 200;
  const TOKEN_KEY = 'sluice.console.token';

  // Storage can be refused (a browser's privacy settings): the page then asks every time.
  function readToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function keepToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* kept for this page only */ }
  }

  const state = {
    token: readToken(),
    who: null,           // GET /v1/whoami
    steering: null, plans: null, health: null, detection: null, fleet: null,
    audit: [], auditNext: 0, auditMissing: false,
    chart: null, chartWindow: 3600, chartAt: 0,
    timer: null, polling: false, generation: 0,
    action: null,        // the open action form: {kind, region, previewed}
  };

  // ---- DOM helpers: text only -------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'onclick' || k === 'onchange' || k === 'oninput' || k === 'onsubmit') {
        node.addEventListener(k.slice(2), v);
      } else if (k === 'text') {
        node.textContent = String(v);
      } else {
        node.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  function append(node, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function replace(node, ...children) {
    node.replaceChildren();
    append(node, children);
  }
  const $ = (id) => document.getElementById(id);

  // ---- Formatting ------------------------------------------------------------------------
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return '-';
    return Number(v).toFixed(digits === undefined ? 1 : digits);
  }
  function pct(v) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return '-';
    const p = Number(v) * 100;
    return (p < 1 && p > 0 ? p.toFixed(2) : p.toFixed(1)) + '%';
  }
  function bpText(bp) { return (bp / 100).toString() + '%'; }
  function timeText(ms) {
    if (!ms) return '-';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
  }
  function ago(ms) {
    if (!ms) return '';
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) return 'in ' + (-s) + ' s';
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }

  // ---- Messages --------------------------------------------------------------------------
  const messages = new Map();  // key -> {kind, text}
  function say(key, kind, text) {
    messages.set(key, { kind, text });
    drawMessages();
  }
  function unsay(key) {
    if (messages.delete(key)) drawMessages();
  }
  function drawMessages() {
    const box = $('messages');
    replace(box, [...messages.entries()].map(([key, m]) =>
      el('p', { class: 'msg ' + m.kind, 'data-key': key }, m.text,
        m.kind === 'ok' || m.kind === 'error' && key.startsWith('action')
          ? el('button', { type: 'button', class: 'dismiss', 'aria-label': 'dismiss',
              onclick: () => unsay(key) }, '×')
          : null)));
  }

  // ---- The API ---------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }
  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + state.token };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'the admin listener does not answer (' + e.message + ')');
    }
    const text = await response.text();
    let doc = null;
    try { doc = JSON.parse(text); } catch (e) { doc = null; }
    if (!response.ok) {
      const why = doc && typeof doc.error === 'string' ? doc.error : text.trim() || response.statusText;
      throw new ApiError(response.status, why);
    }
    return doc;
  }
  function explain(e) {
    if (!(e instanceof ApiError)) return String(e && e.message || e);
    switch (e.status) {
      case 0: return e.message;
      case 401: return 'The token was refused (401): it is wrong, or no longer configured. Enter a valid token.';
      case 403: return 'Not allowed (403): ' + e.message;
      case 503: return 'The fleet\'s store is unreachable (503): nothing changed. ' + e.message;
      default: return 'Error ' + e.status + ': ' + e.message;
    }
  }

  // ---- Token -----------------------------------------------------------------------------
  function useToken(token) {
    state.token = token;
    state.who = null;
    state.generation++;
    keepToken(token);
    state.audit = [];
    state.auditNext = 0;
    state.chartAt = 0;
    messages.clear();
    drawMessages();
    if (!token) {
      stopPolling();
      $('main').hidden = true;
      replace($('role'));
      say('token', 'info', 'Enter a read or admin token (admin.tokens in the configuration) to see the regions.');
      return;
    }
    startPolling();
  }
  function stopPolling() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }
  function startPolling() {
    stopPolling();
    poll();
  }

  // ---- Polling ---------------------------------------------------------------------------
  // One poll at a time. A poll started for a token that is no longer the one in use writes
  // nothing (every await is followed by a generation check) and hands over to a new poll.
  async function poll() {
    if (state.polling) {
      state.pollAgain = true;  // the running poll starts another when it ends
      return;
    }
    state.polling = true;
    state.pollAgain = false;
    const generation = state.generation;
    const current = () => generation === state.generation;
    let again = true;
    try {
      const who = state.who || await api('GET', '/v1/whoami');
      if (!current()) return;
      state.who = who;
      const [steering, plans, health, detection, fleet] = await Promise.all([
        api('GET', '/v1/steering'), api('GET', '/v1/plans'), api('GET', '/v1/health'),
        api('GET', '/v1/detection').catch((e) => (e.status === 404 ? null : Promise.reject(e))),
        api('GET', '/v1/fleet'),
      ]);
      if (!current()) return;
      Object.assign(state, { steering, plans, health, detection, fleet });
      unsay('poll');
      unsay('token');
      // The history and the charts fail on their own: the rest of the page still refreshes.
      await pollAudit(current);
      if (!current()) return;
      if (Date.now() - state.chartAt > CHART_EVERY_MS[state.chartWindow]) await pollChart(current);
      if (!current()) return;
      $('main').hidden = false;
      draw();
      replace($('refreshed'), 'updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      if (!current()) return;
      say('poll', 'error', explain(e));
      if (e.status === 401) {
        again = false;
        state.who = null;
        $('main').hidden = true;
        replace($('role'));
        $('token').focus();
      }
    } finally {
      state.polling = false;
      if (state.pollAgain || !current()) {
        if (state.token) {
          stopPolling();
          state.timer = setTimeout(poll, 0);
        }
      } else if (again) {
        stopPolling();
        state.timer = setTimeout(poll, POLL_MS);
      }
    }
  }
  async function pollAudit(current) {
    if (state.auditMissing) return;
    try {
      const since = state.auditNext > 0 ? 'since=seq:' + (state.auditNext - 1) + '&' : '';
      const doc = await api('GET', '/v1/audit?' + since + 'limit=' + AUDIT_ROWS);
      if (!current() || !doc || !Array.isArray(doc.events)) return;
      if (doc.next < state.auditNext) {
        // The node restarted (its sequence starts over): read its history from the start.
        state.audit = [];
        state.auditNext = 0;
        return pollAudit(current);
      }
      state.audit = state.audit.concat(doc.events).slice(-AUDIT_ROWS);
      state.auditNext = doc.next || state.auditNext;
      state.auditDropped = doc.dropped || 0;
      unsay('audit');
    } catch (e) {
      if (!current()) return;
      if (e.status === 404) state.auditMissing = true;
      else say('audit', 'error', 'The history could not be read. ' + explain(e));
    }
  }
  async function pollChart(current) {
    const window = state.chartWindow;
    try {
      const chart = await api('GET', '/v1/history/chart?window=' + window);
      if (!current() || window !== state.chartWindow) return;
      state.chart = chart;
      state.chartAt = Date.now();
      unsay('chart');
    } catch (e) {
      if (!current() || window !== state.chartWindow) return;
      state.chartAt = Date.now();  // tried: again at the next chart refresh
      if (e.status === 404) state.chart = null;
      else say('chart', 'error', 'The charts could not be read. ' + explain(e));
    }
  }

  // ---- Drawing ---------------------------------------------------------------------------
  function isAdmin() { return !!(state.who && state.who.admin); }

  function draw() {
    const s = state.steering;
    const who = state.who;
    replace($('role'), who ? (who.admin ? 'admin' : 'read only') + ': ' + who.token : '');
    $('role').className = 'badge ' + (who && who.admin ? 'admin' : 'read');
    document.body.classList.toggle('read-only', !isAdmin());
    if (!s || !s.enabled) {
      say('steering', 'info', 'Steering is not configured on this node: nothing to steer.');
      return;
    }
    unsay('steering');
    replace($('node'), 'region ' + s.local_region +
      (state.fleet && state.fleet.node ? ' · node ' + state.fleet.node : ''));
    replace($('version'), 'table version ' + s.version);
    const f = s.fleet || {};
    if (f.enabled && (!f.connected || f.error)) {
      say('fleet', 'error', 'The fleet\'s store (etcd) is unreachable: changes are refused until it is back' +
        (f.error ? ' (' + f.error + ')' : '') + '. What is shown is this node\'s last copy.');
    } else {
      unsay('fleet');
    }
    drawRegions();
    drawPlans();
    drawCharts();
    drawDetection();
    drawFleet();
    drawAudit();
  }

  function regionHealth(region) {
    const h = state.health;
    if (!h) return null;
    if (h.region === region) return h.local || null;
    const p = h.peers && h.peers[region];
    if (!p) return null;
    return p.reachable ? p : { unreachable: true, error: p.error };
  }

  function drawRegions() {
    const s = state.steering;
    const tbody = $('regions').querySelector('tbody');
    const rows = [];
    for (const name of s.region_order) {
      const r = s.regions[name];
      const judged = state.detection && state.detection.regions ? state.detection.regions[name] : null;
      const health = regionHealth(name);
      const cap = state.health && state.health.regions_capacity ? state.health.regions_capacity[name] : null;
      const saviors = Object.entries(r.saviors || {});
      const verdict = judged ? judged.verdict : '-';
      const edge = state.detection && state.detection.edges ? state.detection.edges[name] : null;
      const healthCells = health && health.unreachable
        ? [el('td', { colspan: 3, class: 'bad', title: health.error || '' }, 'unreachable')]
        : [el('td', { class: health && health.error_rate > 0.05 ? 'bad' : '' }, health ? pct(health.error_rate) : '-'),
           el('td', { class: health && health.shed_rate > 0.05 ? 'bad' : '' }, health ? pct(health.shed_rate) : '-'),
           el('td', {}, health ? num(health.p99_ms, 0) + ' ms' : '-')];
      rows.push(el('tr', { 'data-region': name },
        el('th', { scope: 'row' }, name, name === s.local_region ? el('span', { class: 'muted' }, ' (this)') : null,
          r.healthy === false ? el('span', { class: 'tag bad' }, 'unhealthy') : null),
        el('td', {}, el('div', { class: 'frac' },
          el('span', { class: 'fraction' }, r.fraction),
          el('div', { class: 'bar' }, el('div', { class: 'fill', 'data-bp': r.evacuated_bp }))),
          r.active_plan ? el('span', { class: 'tag' }, 'plan ' + r.active_plan) : null),
        el('td', { class: 'saviors' }, saviors.length === 0 ? '-' :
          saviors.map(([sv, w]) => el('span', { class: 'savior' }, sv + ' ' + w))),
        el('td', { class: 'verdict v-' + verdict, title: judged ? judged.reason : '' }, verdict,
          edge && (edge.state === 'suspect' || edge.state === 'dead') ? el('span', { class: 'tag bad', title: edge.detail }, 'edge ' + edge.state) : null),
        el('td', {}, judged ? num(judged.entry_sps) + ' / ' + num(judged.expected_entry_sps) +
          (judged.ratio !== null && judged.ratio !== undefined && judged.expected !== null ? ' (' + num(judged.ratio, 2) + 'x)' : '') : '-'),
        healthCells,
        el('td', {}, cap ? num(cap.capacity_rps, 0) + ' rps' +
          (cap.standby_capacity_rps > 0 ? ' +' + num(cap.standby_capacity_rps, 0) + ' standby' : '') : '-'),
        el('td', { class: cap && cap.utilization > 0.9 ? 'bad' : '' }, cap ? pct(cap.utilization) : '-'),
        el('td', {}, r.dns_out ? el('span', { class: 'tag bad' }, 'out') : 'in'),
        el('td', { class: 'act' }, el('div', { class: 'actions' },
          r.evacuated_bp < 10000 ? el('button', { type: 'button', class: 'admin-only', 'data-action': 'evacuate', onclick: () => openAction('evacuate', name) }, 'Evacuate…') : null,
          r.evacuated_bp > 0 || r.dns_out || r.active_plan ? el('button', { type: 'button', class: 'admin-only', 'data-action': 'restore', onclick: () => openAction('restore', name) }, 'Restore…') : null,
          el('button', { type: 'button', class: 'admin-only', 'data-action': 'weights', onclick: () => openAction('weights', name) }, 'Weights…'),
          el('button', { type: 'button', class: 'admin-only', 'data-action': 'standbys', onclick: () => openAction('standbys', name) }, 'Standbys…')))));
    }
    replace(tbody, rows);
    // Widths through CSSOM (allowed by the policy), not a style attribute (which is not).
    for (const fill of tbody.querySelectorAll('.fill')) {
      fill.style.width = (Number(fill.dataset.bp) / 100) + '%';
    }
  }

  function drawPlans() {
    const plans = (state.plans && state.plans.plans) || [];
    const active = plans.filter(isActive);
    const recent = plans.filter((p) => !isActive(p)).sort((a, b) => (b.finished_ms || 0) - (a.finished_ms || 0)).slice(0, 5);
    const box = $('plans');
    if (plans.length === 0) {
      replace(box, el('p', { class: 'muted' }, 'No plans.'));
      return;
    }
    replace(box, active.length === 0 ? el('p', { class: 'muted' }, 'No active plan.') : null,
      active.concat(recent).map(planCard));
  }
  function isActive(p) { return p.state === 'running' || p.state === 'holding'; }

  function planCard(p) {
    const steps = p.steps_bp || [];
    const live = isActive(p);
    const held = live && (p.preparing || p.gate_failures > 0);
    const segments = steps.map((bp, i) => {
      const cls = i <= p.step ? 'done' : i === p.step + 1 && live ? (held ? 'current held' : 'current') : 'pending';
      return el('div', { class: 'step ' + cls, title: 'step ' + (i + 1) + ': ' + bpText(bp) }, bpText(bp));
    });
    let gate = 'open';
    if (p.preparing) gate = 'preparing (hook ' + p.hook + ')';
    else if (p.gate_failures > 0) gate = 'held: ' + p.gate_message + ' (' + p.gate_failures + ' checks)';
    if (live && p.held_since_ms) gate += ' · holding for ' + ago(p.held_since_ms).replace(/ ago$/, '');
    const done = Math.min(p.step + 1, steps.length);
    return el('div', { class: 'plan state-' + p.state, 'data-plan': p.id },
      el('div', { class: 'plan-head' },
        el('strong', {}, 'Plan ' + p.id + ': ' + p.kind + ' ' + p.region),
        el('span', { class: 'tag' }, p.state),
        el('span', { class: 'muted' }, 'step ' + done + '/' + steps.length + ' · by ' + p.actor + ' · ' + ago(p.created_ms)),
        live ? el('button', { type: 'button', class: 'admin-only danger', 'data-action': 'abort',
          onclick: () => abortPlan(p) }, 'Abort') : null),
      el('div', { class: 'steps' }, segments),
      el('div', { class: 'plan-detail' },
        el('span', {}, 'gate: ' + gate),
        Object.keys(p.saviors || {}).length ? el('span', {}, 'saviors: ' +
          Object.entries(p.saviors).map(([k, v]) => k + ' ' + v).join(', ')) : null,
        p.dns && p.dns !== 'none' ? el('span', {}, 'DNS: ' + p.dns + (p.dns_message ? ' (' + p.dns_message + ')' : '')) : null,
        p.rollbacks > 0 ? el('span', { class: 'bad' }, 'rollbacks: ' + p.rollbacks + ' (' + p.last_rollback + ')') : null,
        p.hook_output ? el('span', { class: 'muted' }, 'hook: ' + p.hook_output) : null,
        p.next_at_ms && live ? el('span', { class: 'muted' }, 'next step ' + ago(p.next_at_ms)) : null));
  }

  // ---- Charts: plain SVG -----------------------------------------------------------------
  const LINES = [['week', 'l-week'], ['day', 'l-day'], ['expected', 'l-expected'], ['now', 'l-now']];
  function drawCharts() {
    const box = $('charts');
    const c = state.chart;
    if (!c || !c.regions) {
      replace(box, el('p', { class: 'muted' }, 'No history yet.'));
      return;
    }
    const names = state.steering ? state.steering.region_order.filter((r) => c.regions[r]) : Object.keys(c.regions);
    replace(box, names.map((name) => chart(name, c.regions[name], c.now)));
  }
  function chart(name, lines, now) {
    const W = 400, H = 140, L = 40, B = 18;
    const from = now - (state.chart.window_seconds || state.chartWindow);
    let max = 1;
    for (const [key] of LINES) {
      for (const v of lines[key].values) if (v !== null && v > max) max = v;
    }
    max *= 1.1;
    const x = (t) => L + ((t - from) / (now - from)) * (W - L - 4);
    const y = (v) => 4 + (1 - v / max) * (H - B - 8);
    const paths = LINES.map(([key, cls]) => {
      const line = lines[key];
      let d = '';
      let pen = false;
      line.values.forEach((v, i) => {
        const t = line.start + i * line.step + line.step / 2;
        if (v === null || t < from) { pen = false; return; }
        d += (pen ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      });
      return svg('path', { d: d || 'M0 0', class: 'line ' + cls });
    });
    const ticks = [0, 0.5, 1].map((f) => svg('g', {},
      svg('line', { x1: L, x2: W - 4, y1: y(max * f / 1.1), y2: y(max * f / 1.1), class: 'grid' }),
      svg('text', { x: L - 4, y: y(max * f / 1.1) + 4, class: 'axis', 'text-anchor': 'end' }, num(max * f / 1.1, max < 10 ? 1 : 0))));
    const span = now - from;
    const timeTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const t = from + f * span;
      const label = new Date(t * 1000).toISOString().slice(11, 16);
      return svg('text', { x: x(t), y: H - 4, class: 'axis', 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, label);
    });
    return el('figure', { class: 'chart', 'data-region': name },
      el('figcaption', {}, name),
      svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'stream starts per second in ' + name },
        ticks, timeTicks, paths));
  }

  function drawDetection() {
    const d = state.detection;
    const box = $('detection');
    if (!d) {
      replace(box, el('p', { class: 'muted' }, 'No detector (steering is not configured).'));
      return;
    }
    const g = d.global || {};
    const edges = Object.entries(d.edges || {});
    // The select keeps what the user picked until it is applied; until then it follows the API.
    const select = $('detection-mode');
    if (!state.modeTouched) select.value = d.mode;
    replace(box,
      el('p', {},
        'Mode ', el('strong', { id: 'detection-mode-now' }, d.mode), ' (set by ' + (d.mode_set_by || '-') + ') · ',
        'verdict ', el('strong', { class: 'v-' + g.verdict }, g.verdict || '-'),
        g.region ? ' for ' + g.region : '', g.reason ? ' — ' + g.reason : '',
        d.held ? el('span', { class: 'muted' }, ' · held: ' + d.held) : null),
      edges.length ? el('p', {}, 'Edges: ', edges.map(([r, e]) =>
        el('span', { class: 'tag' + (e.state === 'alive' || e.state === 'unknown' ? '' : ' bad'), title: e.detail || '' }, r + ' ' + e.state))) : null,
      d.baseline && d.baseline.error ? el('p', { class: 'bad' }, 'baseline: ' + d.baseline.error) : null,
      d.history && d.history.error ? el('p', { class: 'bad' }, 'history: ' + d.history.error) : null);
  }

  function drawFleet() {
    const f = state.fleet;
    const box = $('fleet');
    if (!f || !f.enabled) {
      replace(box, el('p', { class: 'muted' }, 'No fleet: this node keeps its table alone.'));
      return;
    }
    replace(box,
      el('p', {}, 'etcd ' + f.etcd + ' · ', el('strong', { class: f.connected ? 'good' : 'bad' }, f.connected ? 'connected' : 'disconnected'),
        ' · leader ', f.leader ? f.leader.node + ' (' + f.leader.region + ')' : 'none',
        ' · revision ' + f.revision, f.error ? el('span', { class: 'bad' }, ' · ' + f.error) : null),
      el('div', { class: 'scroll' }, el('table', { id: 'nodes' },
        el('thead', {}, el('tr', {}, ['Node', 'Region', 'Admin', 'Table version', 'Seen', 'Leader'].map((h) => el('th', {}, h)))),
        el('tbody', {}, (f.nodes || []).map((n) => el('tr', {},
          el('td', {}, n.node), el('td', {}, n.region), el('td', {}, n.admin), el('td', {}, n.version),
          el('td', { class: n.age_seconds > 10 ? 'bad' : '' }, num(n.age_seconds, 0) + ' s ago'),
          el('td', {}, n.leader ? 'leader' : '')))))));
  }

  function drawAudit() {
    const tbody = $('audit').querySelector('tbody');
    if (state.auditMissing) {
      replace(tbody, el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'This node has no audit history endpoint.')));
      return;
    }
    replace(tbody, state.audit.slice().reverse().map((e) => el('tr', { class: e.warning ? 'warn' : '' },
      el('td', {}, String(e.time).replace('T', ' ').replace(/\.\d+Z$|Z$/, '')),
      el('td', {}, e.actor), el('td', {}, e.action),
      el('td', {}, e.version_after !== e.version_before ? e.version_before + ' → ' + e.version_after : ''))));
  }

  // ---- Actions ---------------------------------------------------------------------------
  // One change through the API. The action form's buttons stay disabled until it settles: a
  // second click cannot send it twice.
  async function act(label, method, path, body) {
    const buttons = [...$('action-form').querySelectorAll('button'), $('detection-apply')]
      .filter((b) => !b.disabled);
    for (const b of buttons) b.disabled = true;
    try {
      const doc = await api(method, path, body);
      say('action', 'ok', label + ': done.');
      state.chartAt = 0;
      startPolling();
      return doc;
    } catch (e) {
      say('action', 'error', label + ' failed. ' + explain(e));
      return null;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  function abortPlan(p) {
    openAction('abort', p.region, p);
  }

  async function setMode(mode) {
    const doc = await act('Detection mode ' + mode, 'PUT', '/v1/detection', { mode });
    if (doc) state.modeTouched = false;
  }

  function closeAction() {
    state.action = null;
    $('action-section').hidden = true;
    replace($('action-form'));
    replace($('preview'));
  }

  function field(label, input, hint) {
    return el('label', { class: 'field' }, el('span', {}, label), input, hint ? el('small', { class: 'muted' }, hint) : null);
  }

  function openAction(kind, region, plan) {
    const form = $('action-form');
    const s = state.steering;
    const r = s.regions[region];
    // This form's own record: an answer for an earlier form (or an earlier preview of this
    // one, `seq`) changes nothing.
    const action = { kind, region, previewed: false, body: null, seq: 0 };
    state.action = action;
    replace($('preview'));
    const cancel = el('button', { type: 'button', onclick: closeAction }, 'Cancel');
    let title = '';
    if (kind === 'evacuate') {
      title = 'Evacuate ' + region;
      const saviors = el('input', { name: 'saviors', value: 'auto', spellcheck: 'false' });
      const ramp = el('input', { name: 'ramp', placeholder: 'the configured ramp', spellcheck: 'false' });
      const hold = el('input', { name: 'hold', placeholder: 'the configured hold', spellcheck: 'false' });
      const dns = el('select', { name: 'dns' }, el('option', { value: '' }, 'default'),
        el('option', { value: 'true' }, 'yes'), el('option', { value: 'false' }, 'no'));
      const force = el('input', { name: 'force', type: 'checkbox' });
      const confirm = el('button', { type: 'button', id: 'confirm', class: 'danger', disabled: true }, 'Confirm evacuation');
      const body = () => {
        const b = { kind: 'evacuate', region };
        const sv = saviors.value.trim();
        if (sv === 'auto' || sv === '') b.saviors = 'auto';
        else b.saviors = parseWeights(sv);
        if (ramp.value.trim()) {
          b.ramp = ramp.value.split(',').map((v) => v.trim()).filter((v) => v)
            .map((v) => (/^\d+(\.\d+)?$/.test(v) ? Number(v) : v));
        }
        if (hold.value.trim()) b.hold = hold.value.trim();
        if (dns.value) b.dns = dns.value === 'true';
        if (force.checked) b.force = true;
        return b;
      };
      const invalidate = () => {
        action.seq++;
        action.previewed = false;
        action.body = null;
        confirm.disabled = true;
        replace($('preview'));
      };
      for (const input of [saviors, ramp, hold, dns, force]) {
        input.addEventListener('input', invalidate);
        input.addEventListener('change', invalidate);
      }
      const preview = el('button', { type: 'submit', id: 'preview-button' }, 'Preview');
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        let b;
        try { b = body(); } catch (e) { replace($('preview'), el('p', { class: 'msg error' }, e.message)); return; }
        const seq = ++action.seq;
        const mine = () => state.action === action && action.seq === seq;
        try {
          const p = await api('POST', '/v1/plans:preview', b);
          if (!mine()) return;
          replace($('preview'), previewView(p));
          action.previewed = true;
          action.body = b;
          confirm.disabled = false;
        } catch (e) {
          if (!mine()) return;
          replace($('preview'), el('p', { class: 'msg error' }, 'Preview failed. ' + explain(e)));
        }
      };
      confirm.onclick = async () => {
        if (state.action !== action || !action.previewed || !action.body) return;
        const doc = await act('Evacuation of ' + region, 'POST', '/v1/plans', action.body);
        if (doc) closeAction();
      };
      replace(form,
        field('Saviors', saviors, '"auto" (by capacity) or weights: us-west-2=60, eu-west-1=40'),
        field('Ramp', ramp, 'percentages, e.g. 1, 5, 25, 50, 100'),
        field('Hold', hold, 'between steps, e.g. 30s'),
        field('DNS step', dns), field('Force (skip the one-at-a-time rule)', force),
        el('div', { class: 'buttons' }, preview, confirm, cancel));
    } else if (kind === 'restore') {
      title = 'Restore ' + region;
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        const doc = await act('Restore of ' + region, 'POST', '/v1/plans', { kind: 'restore', region });
        if (doc) closeAction();
      };
      replace(form, el('p', {}, region + ' is evacuated ' + r.fraction + '. A restore ramps it back to 0% by the configured ramp, and puts DNS records that are out back first.'),
        el('div', { class: 'buttons' }, el('button', { type: 'submit', id: 'confirm', class: 'danger' }, 'Confirm restore'), cancel));
    } else if (kind === 'weights') {
      title = 'Savior weights of ' + region;
      const inputs = s.region_order.filter((o) => o !== region).map((o) =>
        el('input', { name: o, type: 'number', min: 0, max: 100, step: 1, value: (r.saviors || {})[o] || 0 }));
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        const saviors = {};
        for (const input of inputs) {
          const v = Number(input.value);
          if (!Number.isInteger(v) || v < 0 || v > 100) {
            replace($('preview'), el('p', { class: 'msg error' }, input.name + ': a weight is a whole number 0..100'));
            return;
          }
          if (v > 0) saviors[input.name] = v;
        }
        const doc = await act('Weights of ' + region, 'PUT', '/v1/steering/regions/' + encodeURIComponent(region),
          { saviors, version: s.version });
        if (doc) closeAction();
      };
      replace(form, inputs.map((i) => field(i.name, i)),
        el('p', { class: 'muted' }, 'Made against table version ' + s.version + ': a change in between is refused (409).'),
        el('div', { class: 'buttons' }, el('button', { type: 'submit', id: 'confirm' }, 'Set weights'), cancel));
    } else if (kind === 'standbys') {
      title = 'Standby endpoints of ' + region;
      const cluster = el('input', { name: 'cluster', value: '*', spellcheck: 'false' });
      const send = (verb) => async () => {
        const c = cluster.value.trim() || '*';
        const doc = await act((verb === 'inject' ? 'Inject' : 'Uninject') + ' standbys of ' + region,
          'POST', '/v1/regions/' + encodeURIComponent(region) + '/standbys/' + encodeURIComponent(c) + ':' + verb);
        if (doc) closeAction();
      };
      form.onsubmit = (ev) => ev.preventDefault();
      replace(form, field('Cluster', cluster, '"*": every cluster'),
        el('div', { class: 'buttons' },
          el('button', { type: 'button', id: 'inject', onclick: send('inject') }, 'Inject'),
          el('button', { type: 'button', id: 'uninject', onclick: send('uninject') }, 'Uninject'), cancel));
    } else if (kind === 'abort') {
      title = 'Abort plan ' + plan.id;
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        const doc = await act('Abort of plan ' + plan.id, 'DELETE', '/v1/plans/' + plan.id);
        if (doc) closeAction();
      };
      replace(form, el('p', {}, 'Plan ' + plan.id + ' (' + plan.kind + ' ' + plan.region + ') stops where it is: ' + region + ' stays at ' + r.fraction + '.'),
        el('div', { class: 'buttons' }, el('button', { type: 'submit', id: 'confirm', class: 'danger' }, 'Confirm abort'), cancel));
    }
    replace($('action-title'), title);
    $('action-section').hidden = false;
    $('action-section').scrollIntoView({ block: 'nearest' });
  }

  function parseWeights(text) {
    const out = {};
    for (const part of text.split(',')) {
      const m = part.trim().match(/^([A-Za-z0-9._-]+)\s*[=:]\s*(\d+)$/);
      if (!m) throw new Error('Saviors: "auto" or region=weight pairs separated by commas, not "' + part.trim() + '"');
      out[m[1]] = Number(m[2]);
    }
    return out;
  }

  function previewView(p) {
    return el('div', { class: 'preview', id: 'preview-result' },
      el('p', {}, p.region + ' serves ' + num(p.region_rps, 0) + ' rps; ' + num(p.stays_rps, 0) + ' rps stay (cohorts that cannot move).'),
      p.would_refuse ? el('p', { class: 'msg error' }, 'Would be refused: ' + p.refusal) : null,
      p.second_evacuation ? el('p', { class: 'msg error' }, 'Another evacuation is in force: ' + p.second_evacuation + ' (force to go ahead).') : null,
      el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, ['Savior', 'Share', 'Capacity', 'Load', 'After', 'Utilization after', 'Standbys to inject']
          .map((h) => el('th', {}, h)))),
        el('tbody', {}, (p.saviors || []).map((sv) => el('tr', {},
          el('td', {}, sv.region, sv.unusable ? el('span', { class: 'tag bad' }, sv.unusable) : null),
          el('td', {}, pct(sv.share)), el('td', {}, num(sv.capacity_rps, 0)), el('td', {}, num(sv.load_rps, 0)),
          el('td', {}, num(sv.predicted_rps, 0)),
          el('td', { class: sv.predicted_utilization > 1 ? 'bad' : '' }, pct(sv.predicted_utilization)),
          el('td', {}, sv.standbys_to_inject)))))),
      el('p', { class: 'muted' }, 'Steps: ' + (p.steps || []).map((st) => st.step + ' (' + pct(st.members_share) + ' of members, ' + num(st.requests_per_second, 0) + ' rps)').join(' → ')),
      p.hook ? el('p', { class: 'muted' }, 'The scale hook runs before the first step.') : null);
  }

  // ---- Start -----------------------------------------------------------------------------
  function start() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      useToken(t);
    });
    $('forget').addEventListener('click', () => useToken(''));
    $('detection-mode').addEventListener('change', () => { state.modeTouched = true; });
    $('detection-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      setMode($('detection-mode').value);
    });
    for (const b of document.querySelectorAll('[data-window]')) {
      b.addEventListener('click', async () => {
        state.chartWindow = Number(b.dataset.window);
        for (const o of document.querySelectorAll('[data-window]')) o.classList.toggle('selected', o === b);
        state.chartAt = 0;
        startPolling();
      });
    }
    useToken(state.token);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
}());
