// stan-broker web console: reads the /streaming/* JSON endpoints of this server.
// No framework, no build step. Every value from the server goes into the page as text.
'use strict';

(function () {
  const BASE = new URL('../streaming/', window.location.href);
  const POLL_MS = 2000;
  const SPARK_POINTS = 60;

  let timer = null;
  let generation = 0; // bumped on every navigation; stale answers are dropped

  // ---- helpers ---------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // Fetches a JSON endpoint; a 4xx/5xx answer becomes an Error with the server's message.
  async function getJSON(path, params) {
    const url = new URL(path, BASE);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
    const r = await fetch(url, { cache: 'no-store' });
    const text = await r.text();
    if (!r.ok) {
      let msg = text.trim();
      try { msg = JSON.parse(text).error || msg; } catch (_) { /* plain-text error */ }
      throw new Error(msg || `HTTP ${r.status}`);
    }
    return JSON.parse(text);
  }

  // An admin request (POST, token in the Authorization header); resolves with the answer.
  async function postAdmin(path, params, token) {
    const url = new URL(path, new URL('./api/', window.location.href));
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const r = await fetch(url, { method: 'POST', headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
    const text = await r.text();
    let body = {};
    try { body = JSON.parse(text); } catch (_) { body = { error: text.trim() }; }
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    return body;
  }

  let adminEnabled = null; // asked once: GET api/admin
  async function adminOn() {
    if (adminEnabled === null) {
      const r = await fetch(new URL('./api/admin', window.location.href), { cache: 'no-store' });
      adminEnabled = r.ok && (await r.json()).enabled === true;
    }
    return adminEnabled;
  }

  function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }

  function fmtBytes(n) {
    n = Number(n || 0);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }

  function fmtRate(r) {
    if (r === null || r === undefined || !isFinite(r)) return '–';
    return r >= 100 ? fmtInt(Math.round(r)) : r.toFixed(1);
  }

  function setStatus(text, isError) {
    const s = document.getElementById('status');
    s.textContent = text;
    s.classList.toggle('error', !!isError);
  }

  function errorBox(message) { return el('div', { class: 'error-box', role: 'alert', text: message }); }

  function card(label, value, extra) {
    return el('div', { class: 'card' + (extra ? ' wide' : '') },
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value', text: value }), extra || null);
  }

  function subKind(s) {
    const parts = [];
    if (s.durable_name) parts.push('durable ' + s.durable_name);
    if (s.queue_name) parts.push('queue ' + s.queue_name);
    if (!parts.length) parts.push('plain');
    return parts.join(', ');
  }

  function flags(s) {
    return el('span', {},
      s.is_stalled ? el('span', { class: 'flag bad', text: 'stalled' }) : null, ' ',
      s.is_offline ? el('span', { class: 'flag warn', text: 'offline' }) : null);
  }

  // Runs `tick` now and every POLL_MS while this view is shown.
  function poll(tick) {
    const gen = generation;
    const run = async () => {
      if (gen !== generation) return;
      try {
        await tick(gen);
        if (gen === generation) setStatus('updated ' + new Date().toLocaleTimeString(), false);
      } catch (e) {
        if (gen === generation) setStatus('refresh failed: ' + e.message, true);
      }
      if (gen === generation) timer = setTimeout(run, POLL_MS);
    };
    run();
  }

  // A sortable, filterable table. columns: {key, label, num, render?, value?}
  function makeTable(columns, opts) {
    const state = { sortKey: opts.sortKey, desc: !!opts.desc, filter: '', rows: [] };
    const tbody = el('tbody');
    const ths = columns.map((c) => el('th', {
      class: 'sortable' + (c.num ? ' num' : ''), 'data-key': c.key, text: c.label,
      onclick: () => {
        if (state.sortKey === c.key) state.desc = !state.desc;
        else { state.sortKey = c.key; state.desc = !!c.num; }
        render();
      },
    }));
    const table = el('table', { class: opts.class || '' }, el('thead', {}, el('tr', {}, ths)), tbody);
    const count = el('span', { class: 'muted' });
    const filter = el('input', {
      type: 'search', placeholder: opts.filterPlaceholder || 'filter', 'aria-label': 'filter',
      oninput: (e) => { state.filter = e.target.value.toLowerCase(); render(); },
    });
    function value(row, c) { return c.value ? c.value(row) : row[c.key]; }
    function render() {
      const col = columns.find((c) => c.key === state.sortKey) || columns[0];
      let rows = state.rows;
      if (state.filter) rows = rows.filter((r) => opts.filterText(r).toLowerCase().includes(state.filter));
      rows = rows.slice().sort((a, b) => {
        const x = value(a, col); const y = value(b, col);
        const d = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return state.desc ? -d : d;
      });
      for (const th of ths) {
        th.classList.toggle('sorted-asc', th.dataset.key === col.key && !state.desc);
        th.classList.toggle('sorted-desc', th.dataset.key === col.key && state.desc);
      }
      tbody.replaceChildren(...rows.map((r) => el('tr', {}, columns.map((c) =>
        el('td', { class: c.num ? 'num' : '' }, c.render ? c.render(r) : String(value(r, c)))))));
      if (!rows.length) {
        tbody.append(el('tr', {}, el('td', { colspan: columns.length, class: 'muted', text: opts.empty || 'nothing' })));
      }
      count.textContent = `${rows.length} of ${state.rows.length}`;
    }
    return {
      toolbar: el('div', { class: 'toolbar' }, filter, count),
      table,
      setRows(rows) { state.rows = rows; render(); },
    };
  }

  // ---- overview --------------------------------------------------------------------------

  function sparkline(series) {
    const w = 300; const h = 48;
    const box = svg('svg', { class: 'spark', viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img' });
    const max = Math.max(1, ...series.in, ...series.out);
    for (const k of ['in', 'out']) {
      const pts = series[k];
      if (pts.length < 2) continue;
      const step = w / (SPARK_POINTS - 1);
      const off = (SPARK_POINTS - pts.length) * step;
      const d = pts.map((v, i) => `${i ? 'L' : 'M'}${(off + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(' ');
      box.append(svg('path', { class: k, d }));
    }
    return box;
  }

  function overview(view) {
    const series = { in: [], out: [] };
    let prev = null;
    const body = el('div');
    view.replaceChildren(el('h1', { text: 'Overview' }), body);
    poll(async (gen) => {
      const [s, st] = await Promise.all([getJSON('serverz'), getJSON('storez')]);
      if (gen !== generation) return;
      const now = performance.now();
      let rin = null; let rout = null;
      if (prev) {
        const dt = (now - prev.t) / 1000;
        rin = Math.max(0, (s.in_msgs - prev.in) / dt);
        rout = Math.max(0, (s.out_msgs - prev.out) / dt);
        series.in.push(rin); series.out.push(rout);
        if (series.in.length > SPARK_POINTS) { series.in.shift(); series.out.shift(); }
      }
      prev = { t: now, in: s.in_msgs, out: s.out_msgs };
      const rates = el('div', {},
        el('div', { class: 'legend' },
          el('span', { class: 'in', text: `in ${fmtRate(rin)} msgs/s` }),
          el('span', { class: 'out', text: `out ${fmtRate(rout)} msgs/s` })),
        sparkline(series));
      body.replaceChildren(el('div', { class: 'cards', id: 'overview-cards' },
        card('Cluster ID', s.cluster_id),
        card('Server ID', s.server_id),
        card('Version', s.version),
        card('Uptime', s.uptime),
        card('Store', st.type),
        card('Stored', `${fmtInt(st.total_msgs)} msgs, ${fmtBytes(st.total_bytes)}`),
        card('Clients', fmtInt(s.clients)),
        card('Channels', fmtInt(s.channels)),
        card('Subscriptions', fmtInt(s.subscriptions)),
        card('Messages in / out', `${fmtInt(s.in_msgs)} / ${fmtInt(s.out_msgs)}`),
        card('Rate (msgs/s)', '', rates)));
    });
  }

  // ---- channels --------------------------------------------------------------------------

  function channelLink(name) { return el('a', { href: '#/channel/' + encodeURIComponent(name), text: name }); }

  function channels(view) {
    const rates = new Map();
    let prev = null;
    const t = makeTable([
      { key: 'name', label: 'Channel', render: (r) => channelLink(r.name) },
      { key: 'msgs', label: 'Messages', num: true, render: (r) => fmtInt(r.msgs) },
      { key: 'bytes', label: 'Bytes', num: true, render: (r) => fmtBytes(r.bytes) },
      { key: 'first_seq', label: 'First seq', num: true, render: (r) => fmtInt(r.first_seq) },
      { key: 'last_seq', label: 'Last seq', num: true, render: (r) => fmtInt(r.last_seq) },
      { key: 'subs_count', label: 'Subscriptions', num: true },
      { key: 'rate', label: 'Msgs/s', num: true, value: (r) => rates.get(r.name) ?? -1, render: (r) => fmtRate(rates.get(r.name)) },
    ], { sortKey: 'name', filterText: (r) => r.name, filterPlaceholder: 'filter channels', class: 'channels', empty: 'no channels' });
    view.replaceChildren(el('h1', { text: 'Channels' }), t.toolbar, t.table);
    poll(async (gen) => {
      const d = await getJSON('channelsz', { subs: 1, limit: 1000000 });
      if (gen !== generation) return;
      const now = performance.now();
      const list = d.channels || [];
      if (prev) {
        const dt = (now - prev.t) / 1000;
        for (const c of list) {
          const p = prev.last.get(c.name);
          if (p !== undefined) rates.set(c.name, Math.max(0, (c.last_seq - p) / dt));
        }
      }
      prev = { t: now, last: new Map(list.map((c) => [c.name, c.last_seq])) };
      t.setRows(list);
    });
  }

  // ---- one channel -----------------------------------------------------------------------

  function decodeBase64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hexDump(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = bytes.subarray(i, i + 16);
      const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
      const asc = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
      lines.push(i.toString(16).padStart(8, '0') + '  ' + hex.padEnd(47) + '  ' + asc);
    }
    return lines.join('\n');
  }

  function renderPayload(bytes, mode) {
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    if (mode === 'hex') return hexDump(bytes);
    if (mode === 'json') {
      try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text + '\n(not valid JSON)'; }
    }
    return text;
  }

  function channel(view, name) {
    const subsBody = el('div');
    const info = el('div', { class: 'cards' });
    const admin = el('div', { id: 'admin' });
    const adminResult = el('div', { id: 'admin-result' });
    const tokenInput = el('input', {
      type: 'password', 'aria-label': 'admin token', placeholder: 'admin token', autocomplete: 'off',
      value: sessionStorage.getItem('stan-console-token') || '',
      oninput: (e) => sessionStorage.setItem('stan-console-token', e.target.value),
    });
    let isAdmin = false;
    async function act(what, path, params) {
      if (!window.confirm(what + '?')) return;
      try {
        await postAdmin(path, params, tokenInput.value);
        adminResult.replaceChildren(el('p', { class: 'muted', role: 'status', text: what + ': done.' }));
        if (path === 'delete-channel') window.location.hash = '#/channels';
      } catch (e) {
        adminResult.replaceChildren(errorBox(what + ' failed: ' + e.message));
      }
    }
    adminOn().then((on) => {
      isAdmin = on;
      if (!on) return;
      admin.replaceChildren(el('h2', { text: 'Admin' }), el('div', { class: 'toolbar' }, tokenInput,
        el('button', { type: 'button', id: 'purge-channel', text: 'Purge messages',
          onclick: () => act(`Purge every message of ${name}`, 'purge-channel', { channel: name }) }),
        el('button', { type: 'button', id: 'delete-channel', text: 'Delete channel',
          onclick: () => act(`Delete channel ${name}`, 'delete-channel', { channel: name }) })), adminResult);
    }).catch(() => {});
    view.replaceChildren(
      el('div', {}, el('a', { href: '#/channels', text: '← Channels' })),
      el('h1', { text: name }), info,
      el('h2', { text: 'Subscriptions' }), subsBody,
      el('h2', { text: 'Messages' }), browser(name), admin);
    poll(async (gen) => {
      let c;
      try {
        c = await getJSON('channelsz', { channel: name, subs: 1 });
      } catch (e) {
        if (gen === generation) { info.replaceChildren(errorBox(e.message)); subsBody.replaceChildren(); }
        return;
      }
      if (gen !== generation) return;
      info.replaceChildren(
        card('Messages', fmtInt(c.msgs)), card('Bytes', fmtBytes(c.bytes)),
        card('First sequence', fmtInt(c.first_seq)), card('Last sequence', fmtInt(c.last_seq)),
        card('Subscriptions', fmtInt(c.subs_count)));
      const subs = c.subscriptions || [];
      subsBody.replaceChildren(subs.length ? el('table', { class: 'subs' },
        el('thead', {}, el('tr', {}, ['Client', 'Kind', 'Inbox', 'Last sent', 'Pending', 'Max in flight', 'Ack wait (s)', 'State']
          .map((h, i) => el('th', { class: i >= 3 && i <= 6 ? 'num' : '', text: h })))),
        el('tbody', {}, subs.map((s) => el('tr', {},
          el('td', { text: s.client_id }), el('td', { text: subKind(s) }), el('td', { text: s.inbox }),
          el('td', { class: 'num', text: fmtInt(s.last_sent) }), el('td', { class: 'num', text: fmtInt(s.pending_count) }),
          el('td', { class: 'num', text: s.max_inflight }), el('td', { class: 'num', text: s.ack_wait }),
          el('td', {}, flags(s), isAdmin && s.is_offline && s.durable_name && !s.queue_name
            ? el('button', { type: 'button', class: 'delete-durable', text: 'Delete durable',
              onclick: () => act(`Delete durable ${s.durable_name} of ${s.client_id}`, 'delete-durable',
                { channel: name, client: s.client_id, durable: s.durable_name }) })
            : null)))))
        : el('p', { class: 'muted', text: 'No subscriptions.' }));
    });
  }

  // The message browser of one channel: pages by sequence or from a time.
  function browser(name) {
    const st = { mode: 'text', limit: 20, page: null, lastQuery: { seq: '' } };
    const seqInput = el('input', { type: 'number', min: 0, placeholder: 'sequence', 'aria-label': 'start sequence', size: 10 });
    const timeInput = el('input', { type: 'datetime-local', step: 1, 'aria-label': 'start time' });
    const limitSel = el('select', { 'aria-label': 'messages per page', onchange: (e) => { st.limit = Number(e.target.value); reload(); } },
      [10, 20, 50, 100].map((n) => el('option', { value: n, selected: n === st.limit, text: `${n} / page` })));
    const modeButtons = ['text', 'hex', 'json'].map((m) => el('button', {
      type: 'button', 'data-mode': m, class: m === st.mode ? 'on' : '', text: m === 'json' ? 'JSON' : m,
      onclick: () => { st.mode = m; for (const b of modeButtons) b.classList.toggle('on', b.dataset.mode === m); show(); },
    }));
    const btn = (label, id, fn) => el('button', { type: 'button', id, text: label, onclick: fn });
    const firstB = btn('⇤ First', 'msg-first', () => load({ seq: 0 }));
    const prevB = btn('← Prev', 'msg-prev', () => {
      const p = st.page; if (!p || !p.msgs.length) return;
      load({ seq: Math.max(p.first_seq, p.msgs[0].sequence - st.limit) });
    });
    const nextB = btn('Next →', 'msg-next', () => st.page && load({ seq: st.page.next_seq }));
    const lastB = btn('Last ⇥', 'msg-last', () => st.page && load({ seq: Math.max(st.page.first_seq, st.page.last_seq - st.limit + 1) }));
    const goSeq = btn('Go', 'msg-go-seq', () => load({ seq: seqInput.value.trim() === '' ? 0 : seqInput.value.trim() }));
    const goTime = btn('From time', 'msg-go-time', () => {
      if (!timeInput.value) { out.replaceChildren(errorBox('Pick a time first.')); return; }
      load({ time: new Date(timeInput.value).toISOString() });
    });
    const summary = el('div', { class: 'muted', id: 'msg-summary' });
    const out = el('div', { id: 'msg-list' });
    const box = el('div', { class: 'browser' },
      el('div', { class: 'toolbar' }, firstB, prevB, nextB, lastB, el('span', { class: 'sep' }),
        seqInput, goSeq, el('span', { class: 'sep' }), timeInput, goTime, el('span', { class: 'sep' }),
        limitSel, el('span', { class: 'sep' }), ...modeButtons),
      summary, out);

    function reload() { load(st.lastQuery); }

    async function load(q) {
      const gen = generation;
      st.lastQuery = q;
      try {
        const p = await getJSON('msgsz', { channel: name, limit: st.limit, seq: q.seq, time: q.time });
        if (gen !== generation) return;
        st.page = p;
        show();
      } catch (e) {
        if (gen !== generation) return;
        st.page = null;
        summary.textContent = '';
        out.replaceChildren(errorBox(e.message));
        updateButtons();
      }
    }

    function updateButtons() {
      const p = st.page;
      const has = p && p.msgs.length > 0;
      prevB.disabled = !has || p.msgs[0].sequence <= p.first_seq;
      nextB.disabled = !p || p.next_seq > p.last_seq;
      lastB.disabled = !p || p.last_seq < p.first_seq;
    }

    function show() {
      const p = st.page;
      updateButtons();
      if (!p) return;
      const stored = p.last_seq >= p.first_seq ? `${fmtInt(p.first_seq)}–${fmtInt(p.last_seq)}` : 'none';
      if (!p.msgs.length) {
        summary.textContent = `Stored sequences: ${stored}.`;
        out.replaceChildren(el('p', { class: 'muted', text: `No messages from sequence ${fmtInt(p.start_seq)} (stored: ${stored}).` }));
        return;
      }
      const a = p.msgs[0].sequence; const b = p.msgs[p.msgs.length - 1].sequence;
      summary.textContent = `Showing ${fmtInt(a)}–${fmtInt(b)} of stored ${stored}.` +
        (p.msgs.length < p.limit && p.next_seq <= p.last_seq ? ' (page cut short: payload budget reached)' : '');
      out.replaceChildren(el('table', { class: 'msgs' },
        el('thead', {}, el('tr', {}, el('th', { class: 'num', text: 'Seq' }), el('th', { text: 'Timestamp' }),
          el('th', { class: 'num', text: 'Size' }), el('th', { text: 'Redelivered' }), el('th', { text: 'Payload' }))),
        el('tbody', {}, p.msgs.map((m) => {
          const bytes = decodeBase64(m.data);
          return el('tr', { 'data-seq': m.sequence },
            el('td', { class: 'num', text: m.sequence }),
            el('td', { text: m.timestamp }),
            el('td', { class: 'num', text: fmtBytes(m.size) }),
            el('td', { text: m.redelivered ? `yes (${m.redelivery_count})` : 'no' }),
            el('td', { class: 'payload' },
              el('pre', { class: 'payload', text: renderPayload(bytes, st.mode) }),
              m.truncated ? el('div', { class: 'note', text: `truncated: showing the first ${fmtBytes(bytes.length)} of ${fmtBytes(m.size)}` }) : null));
        }))));
    }

    load({ seq: 0 });
    return box;
  }

  // ---- clients ---------------------------------------------------------------------------

  function clients(view) {
    const t = makeTable([
      { key: 'id', label: 'Client ID' },
      { key: 'hb_inbox', label: 'Heartbeat inbox', render: (r) => el('code', { text: r.hb_inbox }) },
      {
        key: 'hb_failures', label: 'Heartbeats', value: (r) => r.hb_failures || 0,
        render: (r) => r.hb_failures ? el('span', { class: 'flag bad', text: `${r.hb_failures} unanswered` }) : el('span', { text: 'answered' }),
      },
      { key: 'subs_count', label: 'Subscriptions', num: true },
      {
        key: 'subs', label: 'Channels and subscriptions', value: (r) => Object.keys(r.subscriptions || {}).join(','),
        render: (r) => el('div', {}, Object.entries(r.subscriptions || {}).map(([ch, subs]) =>
          el('div', {}, channelLink(ch), ': ', subs.map((s, i) => el('span', {}, i ? '; ' : '',
            `${subKind(s)}, last sent ${s.last_sent}, pending ${s.pending_count}`, ' ', flags(s)))))),
      },
    ], { sortKey: 'id', filterText: (r) => r.id + ' ' + Object.keys(r.subscriptions || {}).join(' '), filterPlaceholder: 'filter clients', class: 'clients', empty: 'no clients' });
    view.replaceChildren(el('h1', { text: 'Clients' }),
      el('p', { class: 'muted', text: 'A client is listed while it is registered: the server drops one whose heartbeats go unanswered too many times.' }),
      t.toolbar, t.table);
    poll(async (gen) => {
      const d = await getJSON('clientsz', { subs: 1, limit: 1000000 });
      if (gen === generation) t.setRows(d.clients || []);
    });
  }

  // ---- routing ---------------------------------------------------------------------------

  function route() {
    generation++;
    if (timer) { clearTimeout(timer); timer = null; }
    const view = document.getElementById('view');
    const hash = window.location.hash.replace(/^#/, '') || '/';
    let nav = 'overview';
    if (hash === '/channels') { nav = 'channels'; channels(view); }
    else if (hash.startsWith('/channel/')) { nav = 'channels'; channel(view, decodeURIComponent(hash.slice('/channel/'.length))); }
    else if (hash === '/clients') { nav = 'clients'; clients(view); }
    else overview(view);
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === nav);
  }

  window.addEventListener('hashchange', route);
  route();
})();
