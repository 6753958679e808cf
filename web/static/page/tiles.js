// tiles.js: the grid of the call: a tile per person (and per shared
// screen) brought in line with the state, sized to fit, speakers marked,
// and the simulcast layer each remote video needs for its tile.

import { state, ui } from './state.js';
import { toast } from './status.js';

/** @import { TrackInfo } from '../sfu.js' */
/** @import { Tile } from './state.js' */

/**
 * @typedef {object} TileSpec
 * @property {string} key
 * @property {string} participant
 * @property {string} name
 * @property {boolean} local
 * @property {boolean} screen
 * @property {MediaStreamTrack[]} tracks
 * @property {boolean} audioMuted
 * @property {boolean} videoMuted
 * @property {TrackInfo|null} video the remote video track shown
 * @property {string|undefined} [via] how the person is connected: "whip" for a broadcast encoder
 *   (WHEP viewers get no tile: they are counted in the top bar)
 */

/** Brings the tiles in line with the state. */
export function render() {
  const client = state.client;
  if (!client) return;
  /** @type {TileSpec[]} */
  const specs = [];
  const self = client.participantId ?? 'self';
  specs.push({
    key: 'local', participant: self, name: `${state.name} (you)`, local: true, screen: false,
    tracks: state.tracks.camera ? [state.tracks.camera] : [],
    audioMuted: !state.tracks.mic || state.micMuted,
    videoMuted: !state.tracks.camera || state.camMuted,
    video: null,
  });
  if (state.tracks.screen) {
    specs.push({
      key: 'local:screen', participant: self, name: `${state.name} (your screen)`, local: true, screen: true,
      tracks: [state.tracks.screen], audioMuted: true, videoMuted: false, video: null,
    });
  }
  let viewers = 0;
  for (const p of client.participants.values()) {
    if (p.via === 'whep') {
      viewers++;
      continue;
    }
    const audio = p.tracks.filter((t) => t.kind === 'audio');
    const videos = p.tracks.filter((t) => t.kind === 'video');
    const main = videos[0] ?? null;
    /** @type {MediaStreamTrack[]} */
    const tracks = [];
    const mainMedia = main && state.media.get(main.id);
    if (mainMedia) tracks.push(mainMedia);
    for (const a of audio) {
      const m = state.media.get(a.id);
      if (m) tracks.push(m);
    }
    specs.push({
      key: `p:${p.id}`, participant: p.id, name: p.name, local: false, screen: false, tracks, via: p.via,
      audioMuted: !audio.some((t) => !t.muted),
      videoMuted: !main || main.muted,
      video: main,
    });
    for (const v of videos.slice(1)) {
      const m = state.media.get(v.id);
      specs.push({
        key: `p:${p.id}:${v.id}`, participant: p.id, name: `${p.name} (screen)`, local: false, screen: true,
        tracks: m ? [m] : [], audioMuted: true, videoMuted: v.muted, video: v,
      });
    }
  }

  ui.watching.hidden = viewers === 0;
  ui.watching.textContent = viewers === 1 ? '1 watching' : `${viewers} watching`;

  const wanted = new Set(specs.map((s) => s.key));
  for (const [key, tile] of state.tiles) {
    if (!wanted.has(key)) {
      tile.video.srcObject = null;
      tile.el.remove();
      state.tiles.delete(key);
    }
  }
  /** @type {Element|null} */
  let prev = null;
  for (const spec of specs) {
    let tile = state.tiles.get(spec.key);
    if (!tile) {
      tile = createTile(spec);
      state.tiles.set(spec.key, tile);
    }
    updateTile(tile, spec);
    /** @type {Element|null} */
    const want = prev ? prev.nextElementSibling : ui.grid.firstElementChild;
    if (want !== tile.el) ui.grid.insertBefore(tile.el, want);
    prev = tile.el;
  }
  layoutGrid();
  markSpeakers();
  chooseLayers();
}

/**
 * @param {TileSpec} spec
 * @returns {Tile}
 */
function createTile(spec) {
  const el = document.createElement('figure');
  el.className = 'tile';
  el.setAttribute('role', 'listitem');
  el.dataset.key = spec.key;
  if (spec.local) el.dataset.local = '';
  if (spec.screen) el.dataset.screen = '';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = spec.local || spec.screen; // no echo of ourselves; remote audio plays in the main tile
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');
  const initials = document.createElement('span');
  avatar.append(initials);
  const caption = document.createElement('figcaption');
  const name = document.createElement('span');
  name.className = 'name';
  const via = document.createElement('span');
  via.className = 'via';
  via.textContent = 'WHIP';
  via.title = 'Sent by a broadcast encoder (WHIP)';
  via.hidden = true;
  caption.append(name, via, badge('mic-off', '#i-mic-off', 'Microphone muted'), badge('cam-off', '#i-cam-off', 'Camera off'));
  const why = document.createElement('p');
  why.className = 'why';
  why.hidden = true;
  el.append(video, avatar, why, caption);
  const stream = new MediaStream();
  video.srcObject = stream;
  return { el, video, stream };
}

/**
 * @param {string} cls
 * @param {string} icon
 * @param {string} label
 */
function badge(cls, icon, label) {
  const b = document.createElement('span');
  b.className = `badge ${cls}`;
  b.setAttribute('role', 'img');
  b.setAttribute('aria-label', label);
  b.title = label;
  b.innerHTML = `<svg aria-hidden="true"><use href="${icon}"/></svg>`;
  return b;
}

/**
 * @param {Tile} tile
 * @param {TileSpec} spec
 */
function updateTile(tile, spec) {
  const { el } = tile;
  el.dataset.participant = spec.participant;
  el.dataset.name = spec.name;
  if (spec.via) el.dataset.via = spec.via;
  else delete el.dataset.via;
  /** @type {HTMLElement} */ (el.querySelector('.via')).hidden = spec.via !== 'whip';
  el.dataset.audioMuted = String(spec.audioMuted);
  el.dataset.videoMuted = String(spec.videoMuted);
  if (spec.video) el.dataset.track = spec.video.id;
  /** @type {HTMLElement} */ (el.querySelector('.name')).textContent = spec.name;
  const person = spec.name.replace(/ \(.*\)$/, '');
  /** @type {HTMLElement} */ (el.querySelector('.avatar span')).textContent = initialsOf(person);
  /** @type {HTMLElement} */ (el.querySelector('.avatar')).style.setProperty('--hue', String(hueOf(person)));
  /** @type {HTMLElement} */ (el.querySelector('.mic-off')).hidden = spec.screen || !spec.audioMuted;
  /** @type {HTMLElement} */ (el.querySelector('.cam-off')).hidden = spec.screen || !spec.videoMuted;
  const unsupported = spec.video?.unsupported;
  const why = /** @type {HTMLElement} */ (el.querySelector('.why'));
  why.hidden = !unsupported;
  why.textContent = unsupported ? `No video: this browser cannot play ${spec.video?.codec.replace(/^video\//, '')} here` : '';
  why.title = unsupported ?? '';
  if (unsupported) el.dataset.unsupported = spec.video?.codec ?? '';
  else delete el.dataset.unsupported;
  const hasVideo = spec.tracks.some((t) => t.kind === 'video');
  el.classList.toggle('no-video', !hasVideo || spec.videoMuted);
  el.setAttribute('aria-label', `${spec.name}${spec.audioMuted && !spec.screen ? ', microphone muted' : ''}${spec.videoMuted && !spec.screen ? ', camera off' : ''}`);

  const have = tile.stream.getTracks();
  const same = have.length === spec.tracks.length && spec.tracks.every((t) => have.includes(t));
  if (!same) {
    for (const t of have) if (!spec.tracks.includes(t)) tile.stream.removeTrack(t);
    for (const t of spec.tracks) if (!have.includes(t)) tile.stream.addTrack(t);
    // Some browsers only notice new tracks of a playing stream when it is set again.
    tile.video.srcObject = tile.stream;
  }
  if (tile.stream.getTracks().length > 0 && tile.video.paused) play(tile.video);
}

/** @param {HTMLVideoElement} video */
function play(video) {
  video.play().catch((err) => {
    if (err.name === 'NotAllowedError') offerAudioUnlock();
  });
}

let unlockShown = false;

/** Autoplay with sound was refused: one click lets every tile play. */
function offerAudioUnlock() {
  if (unlockShown) return;
  unlockShown = true;
  toast('Sound is paused', 'The browser needs a click before it plays the others.', 'Play sound', () => {
    unlockShown = false;
    for (const tile of state.tiles.values()) play(tile.video);
  });
}

/**
 * Sizes the tiles: the number of columns that gives the largest 16:9
 * tiles fitting the grid (scrolling when even one column would be too
 * small, as on a phone held sideways).
 */
export function layoutGrid() {
  const n = Math.max(1, state.tiles.size);
  const gap = parseFloat(getComputedStyle(ui.grid).columnGap) || 0;
  const width = ui.grid.clientWidth;
  const height = ui.grid.clientHeight;
  if (width === 0) return;
  let best = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * 16 / 9);
    if (w > best) best = w;
  }
  const min = Math.min(width, 200);
  ui.grid.style.setProperty('--tile-w', `${Math.floor(Math.max(best, min))}px`);
  ui.grid.dataset.count = String(state.tiles.size);
}

export function markSpeakers() {
  for (const tile of state.tiles.values()) {
    const speaking = !tile.el.hasAttribute('data-screen') && state.speakers.has(tile.el.dataset.participant ?? '');
    tile.el.classList.toggle('speaking', speaking);
  }
}

/**
 * Asks each remote video for the simulcast layer its tile can show. A layer
 * asked through the client directly (from the console: `tessera.client.setLayer`)
 * is left alone.
 */
export function chooseLayers() {
  const client = state.client;
  if (!client || client.connectionState === 'reconnecting') return;
  for (const tile of state.tiles.values()) {
    const id = tile.el.dataset.track;
    if (!id || tile.el.hasAttribute('data-local')) continue;
    const info = client.tracks.get(id);
    if (!info || info.layers.length === 0 || !state.media.has(id)) continue;
    const asked = client.layer(id);
    if (asked !== undefined && state.layers.has(id) && asked !== state.layers.get(id)) continue;
    const width = tile.el.clientWidth * (window.devicePixelRatio || 1);
    let rid = width <= 240 ? 'q' : width <= 560 ? 'h' : 'f';
    if (tile.el.hasAttribute('data-screen')) rid = 'f';
    if (!info.layers.includes(rid)) rid = info.layers.at(-1) ?? rid;
    if (state.layers.get(id) === rid) continue;
    state.layers.set(id, rid);
    const req = client.setLayer(id, /** @type {'q'|'h'|'f'} */ (rid));
    if (req) {
      state.layerRequests.set(req, id);
      if (state.layerRequests.size > 64) state.layerRequests.delete(state.layerRequests.keys().next().value ?? '');
    }
  }
}

/** @param {string} name */
function initialsOf(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  /** @param {string|undefined} w @returns {string} its first character, whole even outside the BMP */
  const initial = (w) => (w ? [...w][0] ?? '' : '');
  const first = initial(words[0]) || '?';
  const last = words.length > 1 ? initial(words.at(-1)) : '';
  return (first + last).toUpperCase();
}

/** @param {string} s */
function hueOf(s) {
  let h = 0;
  for (const c of s) h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  return h;
}
