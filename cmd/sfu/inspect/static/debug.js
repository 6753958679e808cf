// The server's own webrtc-internals: fetches debug/rooms every second or
// two, keeps a short history per published track and subscription, and
// redraws the rooms with a small graph for each.

const WINDOW_MS = 120_000; // what a graph shows at most
const MIN_SPAN_MS = 10_000; // a young series is stretched over at least this
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  snapshot: null,
  series: new Map(), // key -> {points: [{t, rate, loss}], last: counters}
  open: new Set(), // keys of <details> the user opened
  samples: 0,
  timer: 0,
  interval: 1000,
};

// A handle for the browser tests and for poking around in the console.
window.tesseraDebug = state;

// ---- formatting ----

function bitrate(bps) {
  if (!bps) return '0';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbps`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(0)} kbps`;
  return `${bps} bps`;
}

function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

function millis(ms) {
  if (ms === undefined || ms === null) return '–';
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

function clock(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString('en-GB', {hour12: false}) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// ---- DOM helpers (text only: names come from clients) ----

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// viaBadge marks a participant that is not a client of the signaling
// socket: a WHIP publisher, or a WHEP viewer with what it plays.
function viaBadge(p) {
  if (p.via === 'whip') return [' ', el('span', {class: 'via', title: 'a publisher that joined over WHIP'}, 'WHIP')];
  if (p.via === 'whep') {
    const what = p.watching === 'speaker' ? 'the speaker' : p.watching;
    return [' ', el('span', {class: 'via', title: 'a viewer that plays the room over WHEP'}, 'WHEP'), ' ', el('small', {class: 'watching'}, 'watching ', what)];
  }
  return p.via ? [' ', el('span', {class: 'via'}, String(p.via).toUpperCase())] : [];
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// ---- history ----

// sample adds a point to a series: the bitrate, and a loss figure computed
// from the counters' increase since the previous point.
function sample(key, t, rate, counters, lossOf) {
  let s = state.series.get(key);
  if (!s) {
    s = {points: [], last: null, seen: 0};
    state.series.set(key, s);
  }
  const loss = s.last ? lossOf(s.last, counters, (t - s.lastT) / 1000) : 0;
  s.points.push({t, rate, loss: Math.max(0, loss)});
  s.last = counters;
  s.lastT = t;
  s.seen = state.samples;
  while (s.points.length > 2 && s.points[0].t < t - WINDOW_MS) s.points.shift();
  return s;
}

// trackLoss: percentage of the packets expected since the last sample that
// never arrived.
function trackLoss(prev, cur) {
  const got = cur.packets - prev.packets;
  const lost = cur.lost - prev.lost;
  return got + lost > 0 ? (100 * lost) / (got + lost) : 0;
}

// nackRate: NACK messages per second from the subscriber, the sign of loss
// on its side.
function nackRate(prev, cur, dt) {
  return dt > 0 ? (cur.nacks - prev.nacks) / dt : 0;
}

function record(snap) {
  state.samples++;
  const t = Date.parse(snap.at);
  for (const room of snap.rooms) {
    for (const p of room.participants) {
      for (const tr of p.published) {
        sample(`up/${tr.id}`, t, tr.bitrateBps, {packets: tr.packets, lost: tr.lost}, trackLoss);
      }
      for (const s of p.subscriptions) {
        sample(`down/${p.id}/${s.track}`, t, s.bitrateBps, {nacks: s.nacksReceived}, nackRate);
      }
    }
  }
  // Forget what ended a window ago.
  for (const [key, s] of state.series) {
    if (s.seen < state.samples && s.points.at(-1).t < t - WINDOW_MS) state.series.delete(key);
  }
}

// ---- graphs ----

const GRAPH = {w: 300, h: 64, pad: 2};

// graph draws the bitrate (filled, blue) and the loss figure (red line, its
// own scale) of a series over the last WINDOW_MS.
function graph(key, lossLabel) {
  const s = state.series.get(key);
  const pts = s ? s.points : [];
  const box = svg('svg', {
    class: 'graph', viewBox: `0 0 ${GRAPH.w} ${GRAPH.h}`, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': `bitrate and ${lossLabel} over the last ${WINDOW_MS / 1000} s at most`,
  });
  box.dataset.points = String(pts.length);
  const wrap = el('figure', {class: 'chart'});
  wrap.append(box);
  if (pts.length === 0) return wrap;

  const now = pts.at(-1).t;
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - pts[0].t));
  const x = (t) => GRAPH.w - ((now - t) / span) * GRAPH.w;
  const maxRate = Math.max(1, ...pts.map((p) => p.rate)) * 1.15;
  const maxLoss = Math.max(lossLabel === 'loss' ? 5 : 2, ...pts.map((p) => p.loss)) * 1.15;
  const y = (v, max) => GRAPH.h - GRAPH.pad - (v / max) * (GRAPH.h - 2 * GRAPH.pad);

  for (const frac of [0.25, 0.5, 0.75]) {
    box.append(svg('line', {class: 'grid', x1: 0, x2: GRAPH.w, y1: GRAPH.h * frac, y2: GRAPH.h * frac}));
  }
  if (pts.length > 1) {
    const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.rate, maxRate).toFixed(1)}`);
    box.append(svg('polygon', {
      class: 'rate-area',
      points: `${x(pts[0].t).toFixed(1)},${GRAPH.h} ${line.join(' ')} ${x(now).toFixed(1)},${GRAPH.h}`,
    }));
    box.append(svg('polyline', {class: 'rate', points: line.join(' ')}));
    box.append(svg('polyline', {
      class: 'loss',
      points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.loss, maxLoss).toFixed(1)}`).join(' '),
    }));
  }
  const last = pts.at(-1);
  const lossText = lossLabel === 'loss' ? `${last.loss.toFixed(1)} % loss` : `${last.loss.toFixed(1)} NACK/s`;
  wrap.append(el('figcaption', {},
    el('span', {class: 'rate-key'}, bitrate(last.rate)),
    el('span', {class: 'muted'}, ` peak ${bitrate(maxRate / 1.15)}`),
    el('span', {class: 'loss-key'}, lossText)));
  return wrap;
}

// ---- rendering ----

function badge(label, value) {
  return el('span', {class: 'badge', data: {state: value || 'none'}}, `${label} `, el('b', {}, value || '–'));
}

function details(key, summary, ...content) {
  const d = el('details', {data: {key}}, el('summary', {}, summary), ...content);
  d.open = state.open.has(key);
  d.addEventListener('toggle', () => {
    if (d.open) state.open.add(key);
    else state.open.delete(key);
  });
  return d;
}

function stats(pairs) {
  return el('dl', {class: 'stats'}, pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function candidate(c) {
  return `${c.address} ${c.protocol} ${c.type}`;
}

function publishedCard(tr) {
  const layers = tr.layers.length > 1 || tr.layers[0]?.rid ? tr.layers.map((l) =>
    el('span', {class: 'layer', data: {active: String(l.active)}}, `${l.rid} ${bitrate(l.bitrateBps)}`)) : null;
  return el('div', {class: 'card', data: {track: tr.id, kind: tr.kind}},
    el('h5', {}, el('span', {class: 'kind'}, tr.kind), ` ${tr.id} `,
      el('span', {class: 'muted'}, `${tr.codec} · mid ${tr.mid}`),
      tr.muted ? el('span', {class: 'flag'}, 'muted') : null),
    graph(`up/${tr.id}`, 'loss'),
    stats([
      ['bitrate', bitrate(tr.bitrateBps)],
      ['packets', count(tr.packets)],
      ['lost', count(tr.lost)],
      ['jitter', millis(tr.jitterMs)],
      ['PLIs sent', count(tr.plisSent)],
      ['subscribers', count(tr.subscribers)],
    ]),
    layers ? el('div', {class: 'layers'}, 'layers: ', layers) : null);
}

function subscriptionCard(p, s, names) {
  return el('div', {class: 'card', data: {track: s.track, kind: s.kind}},
    el('h5', {}, el('span', {class: 'kind'}, s.kind), ` ${s.track} `,
      el('span', {class: 'muted'}, `from ${names.get(s.publisher) || s.publisher}`),
      s.layer ? el('span', {class: 'flag'}, `layer ${s.layer}`) : null),
    graph(`down/${p.id}/${s.track}`, 'nacks'),
    stats([
      ['bitrate', bitrate(s.bitrateBps)],
      ['packets', count(s.packets)],
      ['NACKs', count(s.nacksReceived)],
      ['PLIs', count(s.plisReceived)],
      ['retransmitted', count(s.retransmitted)],
      ['NACK misses', count(s.nackMisses)],
    ]));
}

// pathText says how a participant's media reaches the server.
function pathText(path) {
  return {
    'udp': 'direct, UDP',
    'tcp': 'direct, TCP',
    'relay-udp': 'relayed by this server\'s TURN, over UDP',
    'relay-tcp': 'relayed by this server\'s TURN, over TCP',
    'relay-tls': 'relayed by this server\'s TURN, over TLS',
    'relay': 'relayed by another TURN server',
  }[path] || 'not connected';
}

function participantView(p, names) {
  const pair = p.candidatePair;
  const raw = p.rawStats.replace(/^\//, '');
  return el('article', {class: 'participant', data: {participant: p.id, name: p.name}},
    el('header', {},
      el('h3', {}, p.name, ' ', el('code', {}, p.id), ...viaBadge(p)),
      el('div', {class: 'badges'},
        badge('pc', p.connection.peerConnection), badge('ice', p.connection.ice),
        badge('dtls', p.connection.dtls), badge('signaling', p.connection.signaling)),
      el('a', {href: raw, target: '_blank', rel: 'noopener', class: 'raw'}, 'raw stats')),
    el('dl', {class: 'facts'},
      el('dt', {}, 'path'), el('dd', {class: 'path'}, pathText(p.path)),
      el('dt', {}, 'send path'), el('dd', {class: 'send-path'}, p.sendPath || '–'),
      el('dt', {}, 'candidate pair'),
      el('dd', {}, pair ? `${candidate(pair.local)} ⇄ ${candidate(pair.remote)}` : 'not connected'),
      el('dt', {}, 'RTT'), el('dd', {}, pair ? millis(pair.rttMs) : '–'),
      el('dt', {}, 'bandwidth estimate'), el('dd', {}, p.bandwidthEstimateBps ? bitrate(p.bandwidthEstimateBps) : 'no feedback'),
      el('dt', {}, 'in call'), el('dd', {}, duration(p.inCallMs))),
    el('h4', {}, `Publishes (${p.published.length})`),
    p.published.length ? el('div', {class: 'cards'}, p.published.map(publishedCard)) : el('p', {class: 'muted'}, 'nothing'),
    el('h4', {}, `Receives (${p.subscriptions.length})`),
    p.subscriptions.length ? el('div', {class: 'cards'}, p.subscriptions.map((s) => subscriptionCard(p, s, names))) : el('p', {class: 'muted'}, 'nothing'),
    details(`neg/${p.id}`, `Negotiation (last ${p.negotiation.length})`,
      el('ol', {class: 'events'}, p.negotiation.map((ev) => el('li', {}, el('time', {datetime: ev.at}, clock(ev.at)), ' ', ev.what)))));
}

function render(snap) {
  const names = new Map();
  for (const room of snap.rooms) for (const p of room.participants) names.set(p.id, p.name);

  const sum = document.getElementById('summary');
  const srv = snap.server;
  sum.replaceChildren(...[
    ['rooms', snap.rooms.length], ['participants', names.size], ['tracks', srv.tracks],
    ['subscriptions', srv.subscriptions], ['sockets', srv.sessions], ['up', duration(srv.uptimeMs)],
  ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));

  const main = document.getElementById('rooms');
  const cluster = snap.cluster ? [clusterView(snap.cluster)] : [];
  if (snap.rooms.length === 0) {
    main.replaceChildren(...cluster, el('p', {class: 'empty'}, 'No rooms yet. ', el('a', {href: './?room=demo'}, 'Join one'), '.'));
    return;
  }
  main.replaceChildren(...cluster, ...snap.rooms.map((room) => el('section', {class: 'room', data: {room: room.name}},
    el('h2', {}, `Room ${room.name} `,
      el('span', {class: 'muted'}, `${room.participants.length} / ${room.maxParticipants} participants${room.recording ? ', recording' : ''}`)),
    ...(room.recordings ? [recordingsView(room.recordings)] : []),
    room.participants.length ? room.participants.map((p) => participantView(p, names)) : el('p', {class: 'muted'}, 'empty'))));
}

// recordingsView lists a room's files: being written, finished, or
// stopped early and why.
function recordingsView(list) {
  return el('ul', {class: 'recordings'}, ...list.map((r) => el('li', {data: {path: r.path, active: String(r.active)}},
    `${r.active ? 'recording' : 'recorded'} ${r.participant}: ${r.path}, ${count(r.bytes)} bytes, ${duration(r.durationMs)}${r.dropped ? `, ${count(r.dropped)} packets dropped (the writer fell behind)` : ''}`,
    ...(r.error ? [' ', el('strong', {class: 'error'}, `stopped: ${r.error}`)] : []))));
}

// clusterView lists, in a cluster, the live nodes and every room with the
// node hosting it (this node's own rooms are detailed below it).
function clusterView(c) {
  const directory = c.error ? `directory unreachable: ${c.error}` : (c.healthy ? 'directory up' : 'directory unreachable');
  return el('section', {class: 'room', id: 'cluster'},
    el('h2', {}, `Cluster, seen from ${c.node} `, el('span', {class: 'muted'}, directory)),
    stats((c.nodes || []).map((n) => [n.id + (n.id === c.node ? ' (this node)' : '') + (n.draining ? ' draining' : ''),
      `${n.participants} participants in ${n.rooms} rooms, ${count(Math.round(n.packetsPerSecond))} packets/s forwarded, ${n.cpu.toFixed(2)} cores, ${n.url}`])),
    c.rooms.length
      ? el('ul', {}, ...c.rooms.map((r) => el('li', {data: {room: r.name, node: r.node}},
        `${r.name} on ${r.node}: ${r.participants.length} / ${r.maxParticipants} participants`)))
      : el('p', {class: 'muted'}, 'no room with participants'));
}

function setStatus(kind, text) {
  const s = document.getElementById('status');
  s.dataset.state = kind;
  s.textContent = text;
}

// ---- refresh loop ----

async function refresh() {
  clearTimeout(state.timer);
  try {
    const res = await fetch('debug/rooms', {cache: 'no-store', credentials: 'same-origin'});
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try {
        msg = (await res.json()).error.message;
      } catch {
        // not a JSON error body: keep the status line
      }
      throw new Error(msg);
    }
    const snap = await res.json();
    state.snapshot = snap;
    record(snap);
    render(snap);
    setStatus('ok', `updated ${clock(snap.at)}`);
  } catch (err) {
    setStatus('error', `cannot load debug/rooms: ${err.message}`);
  }
  if (state.interval > 0) state.timer = setTimeout(refresh, state.interval);
}

document.getElementById('interval').addEventListener('change', (ev) => {
  state.interval = Number(ev.target.value);
  if (state.interval > 0) refresh();
  else {
    clearTimeout(state.timer);
    setStatus('paused', 'paused');
  }
});

refresh();
