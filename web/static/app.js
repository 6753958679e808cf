// app.js: the conference page, on top of sfu.js.

import { SFUClient } from './sfu.js';

const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
const VIDEO_CONSTRAINTS = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
/** @type {ReadonlyArray<string>} the values of ?relay= */
const RELAYS = ['udp', 'tcp', 'tls'];
/** How often (ms) the media path shown is looked up again during a call. */
const PATH_INTERVAL = 2000;
/** @type {Record<string, string>} how each media path is shown, by {@link SFUClient#mediaPath}'s `path` */
const PATH_TEXT = {
  udp: 'direct (UDP)',
  tcp: 'direct (TCP)',
  'relay-udp': 'relayed (TURN over UDP)',
  'relay-tcp': 'relayed (TURN over TCP)',
  'relay-tls': 'relayed (TURN over TLS)',
};

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  joinView: byId('join-view'),
  joinForm: /** @type {HTMLFormElement} */ (byId('join-form')),
  room: /** @type {HTMLInputElement} */ (byId('room')),
  name: /** @type {HTMLInputElement} */ (byId('name')),
  joinError: byId('join-error'),
  joinButton: /** @type {HTMLButtonElement} */ (byId('join-button')),
  callView: byId('call-view'),
  roomLabel: byId('room-label'),
  shareLink: /** @type {HTMLInputElement} */ (byId('share-link')),
  copyLink: byId('copy-link'),
  copyStatus: byId('copy-status'),
  grid: byId('grid'),
  controls: byId('controls'),
  mic: byId('mic'),
  camera: byId('camera'),
  screen: byId('screen'),
  settings: byId('settings'),
  leave: byId('leave'),
  devices: /** @type {HTMLDialogElement} */ (byId('devices')),
  micSelect: /** @type {HTMLSelectElement} */ (byId('mic-select')),
  camSelect: /** @type {HTMLSelectElement} */ (byId('cam-select')),
  conn: byId('conn'),
  connText: byId('conn-text'),
  path: byId('path'),
  toasts: byId('toasts'),
  announce: byId('announce'),
};

/**
 * @typedef {object} Tile
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {MediaStream} stream
 */

const state = {
  /** @type {SFUClient|null} */
  client: null,
  room: '',
  /** Publish the camera in simulcast (off with ?simulcast=0). */
  simulcast: true,
  /** @type {string[]|undefined} the only video codecs to send and receive (?codec=h264) */
  videoCodecs: undefined,
  /** @type {import('./sfu.js').RelayTransport|undefined} force the media through TURN over this transport (?relay=tcp) */
  relay: undefined,
  name: '',
  /** join token from the address's fragment (#token=…, as `sfu token --link` prints); never in the share link */
  token: '',
  /** @type {{mic: MediaStreamTrack|null, camera: MediaStreamTrack|null, screen: MediaStreamTrack|null}} */
  tracks: { mic: null, camera: null, screen: null },
  /** @type {{mic: import('./sfu.js').Publication|null, camera: import('./sfu.js').Publication|null, screen: import('./sfu.js').Publication|null}} */
  pubs: { mic: null, camera: null, screen: null },
  micMuted: false,
  camMuted: false,
  /** @type {Map<string, MediaStreamTrack>} remote tracks arriving, by server track id */
  media: new Map(),
  /** @type {Set<string>} */
  speakers: new Set(),
  /** @type {Map<string, Tile>} */
  tiles: new Map(),
  /** @type {Map<string, string>} simulcast layer asked per track */
  layers: new Map(),
  /** @type {Map<string, string>} request id of a layer request -> track id */
  layerRequests: new Map(),
  /** @type {{kind: 'error'|'info', title: string, message: string}[]} every message shown, for debugging */
  messages: [],
  /** @type {ReturnType<typeof setInterval>|undefined} looks the media path up again, during a call */
  pathTimer: undefined,
  /** Media path look-ups started: only the latest one is shown. */
  pathLookups: 0,
};

// A handle for debugging from the console (and for the browser tests).
Object.defineProperty(window, 'tessera', { value: { get client() { return state.client; }, state } });

// ---- joining and leaving ----

function init() {
  const params = new URLSearchParams(location.search);
  state.token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  const room = params.get('room') ?? '';
  const name = params.get('name') ?? '';
  state.simulcast = params.get('simulcast') !== '0';
  const codec = params.get('codec');
  state.videoCodecs = codec ? codec.split(',').map((c) => `video/${c.trim()}`) : undefined;
  const relay = params.get('relay') ?? '';
  state.relay = RELAYS.includes(relay) ? /** @type {import('./sfu.js').RelayTransport} */ (relay) : undefined;
  ui.room.value = room;
  ui.name.value = name;
  ui.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    join(ui.room.value.trim(), ui.name.value.trim());
  });
  ui.mic.addEventListener('click', toggleMic);
  ui.camera.addEventListener('click', toggleCamera);
  ui.screen.addEventListener('click', toggleScreen);
  ui.settings.addEventListener('click', openDevices);
  ui.leave.addEventListener('click', leave);
  ui.copyLink.addEventListener('click', copyShareLink);
  ui.micSelect.addEventListener('change', () => switchDevice('mic', ui.micSelect.value));
  ui.camSelect.addEventListener('change', () => switchDevice('camera', ui.camSelect.value));
  navigator.mediaDevices?.addEventListener?.('devicechange', () => {
    if (ui.devices.open) fillDeviceLists();
  });
  window.addEventListener('resize', debounce(() => { layoutGrid(); chooseLayers(); }, 200));
  window.addEventListener('pagehide', () => state.client?.close());
  if (!navigator.mediaDevices?.getDisplayMedia) ui.screen.hidden = true;
  setConnection('new');

  if (room && name && validate(room, name) === '') {
    join(room, name);
  } else if (room) {
    ui.name.focus();
  } else {
    ui.room.focus();
  }
}

/**
 * @param {string} room
 * @param {string} name
 * @returns {string} what is wrong, or ''
 */
function validate(room, name) {
  if (!ROOM_RE.test(room)) return 'The room name must be 1 to 64 letters, digits, "-", "_" or ".".';
  if (!name || name.length > 64) return 'Your name must be 1 to 64 characters.';
  return '';
}

/**
 * @param {string} room
 * @param {string} name
 */
async function join(room, name) {
  const problem = validate(room, name);
  showFormError(problem);
  if (problem) return;
  ui.joinButton.disabled = true;
  ui.joinButton.textContent = 'Joining…';
  state.room = room;
  state.name = name;

  await acquireMedia();
  const client = new SFUClient(state.relay ? { relay: state.relay } : {});
  state.client = client;
  wire(client);
  try {
    await client.join(room, name, {
      ...(state.token ? { token: state.token } : {}),
      ...(state.videoCodecs ? { videoCodecs: state.videoCodecs } : {}),
    });
  } catch (err) {
    if (state.client === client) {
      state.client = null;
      stopLocalMedia();
      const code = /** @type {{code?: string}} */ (err).code;
      showFormError(`Could not join: ${errText(err)}${code ? ` (${code})` : ''}`);
      setConnection('new');
    }
    ui.joinButton.disabled = false;
    ui.joinButton.textContent = 'Join';
    return;
  }
  if (state.client !== client) return;
  if (state.tracks.mic) {
    state.pubs.mic = client.publish(state.tracks.mic, { source: 'microphone', muted: state.micMuted });
  }
  if (state.tracks.camera) {
    state.pubs.camera = client.publish(state.tracks.camera, { source: 'camera', simulcast: state.simulcast, muted: state.camMuted });
  }

  const here = new URL(location.href);
  here.search = new URLSearchParams({
    room, name, ...(state.simulcast ? {} : { simulcast: '0' }), ...(state.videoCodecs ? { codec: state.videoCodecs.map((m) => m.slice('video/'.length)).join(',') } : {}),
    ...(state.relay ? { relay: state.relay } : {}),
  }).toString();
  history.replaceState(null, '', here);
  const share = new URL(location.href);
  share.search = new URLSearchParams({ room }).toString();
  share.hash = ''; // the token is this participant's own
  ui.shareLink.value = share.href;
  ui.roomLabel.textContent = room;
  ui.roomLabel.hidden = false;
  document.title = `${room} · Tessera`;
  ui.joinView.hidden = true;
  ui.callView.hidden = false;
  ui.controls.hidden = false;
  ui.joinButton.disabled = false;
  ui.joinButton.textContent = 'Join';
  clearInterval(state.pathTimer);
  state.pathTimer = setInterval(refreshPath, PATH_INTERVAL);
  updateControls();
  render();
}

async function acquireMedia() {
  const md = navigator.mediaDevices;
  if (!md?.getUserMedia) {
    toast('No camera or microphone access', 'This page is not a secure context (https) or the browser has no media devices: you join without sending audio or video.');
    return;
  }
  /** @type {MediaStream|null} */
  let stream = null;
  try {
    stream = await md.getUserMedia({ audio: AUDIO_CONSTRAINTS, video: VIDEO_CONSTRAINTS });
  } catch {
    const parts = await Promise.allSettled([
      md.getUserMedia({ audio: AUDIO_CONSTRAINTS }),
      md.getUserMedia({ video: VIDEO_CONSTRAINTS }),
    ]);
    stream = new MediaStream();
    for (const p of parts) {
      if (p.status === 'fulfilled') p.value.getTracks().forEach((t) => stream?.addTrack(t));
    }
  }
  state.tracks.mic = stream.getAudioTracks()[0] ?? null;
  state.tracks.camera = stream.getVideoTracks()[0] ?? null;
  if (!state.tracks.mic && !state.tracks.camera) {
    toast('No camera or microphone', 'They are missing or access was refused: you join without sending audio or video.');
  } else if (!state.tracks.mic) {
    toast('No microphone', 'It is missing or access was refused: the others will not hear you.');
  } else if (!state.tracks.camera) {
    toast('No camera', 'It is missing or access was refused: you join with audio only.');
  }
  if (state.tracks.mic) state.tracks.mic.enabled = !state.micMuted;
  if (state.tracks.camera) state.tracks.camera.enabled = !state.camMuted;
}

function stopLocalMedia() {
  for (const key of /** @type {const} */ (['mic', 'camera', 'screen'])) {
    state.tracks[key]?.stop();
    state.tracks[key] = null;
    state.pubs[key] = null;
  }
}

function leave() {
  const client = state.client;
  state.client = null;
  client?.leave();
  stopLocalMedia();
  state.media.clear();
  state.speakers.clear();
  state.layers.clear();
  for (const tile of state.tiles.values()) tile.el.remove();
  state.tiles.clear();
  clearInterval(state.pathTimer);
  state.pathTimer = undefined;
  ui.callView.hidden = true;
  ui.controls.hidden = true;
  ui.roomLabel.hidden = true;
  ui.joinView.hidden = false;
  document.title = 'Tessera conference';
  const here = new URL(location.href);
  here.search = new URLSearchParams({ room: state.room }).toString();
  history.replaceState(null, '', here);
  setConnection('new');
  say('You left the room.');
  ui.joinButton.focus();
}

// ---- client events ----

/** @param {SFUClient} client */
function wire(client) {
  /**
   * @param {string} type
   * @param {(detail: any) => void} f
   */
  const on = (type, f) => client.addEventListener(type, (ev) => {
    if (state.client === client) f(/** @type {CustomEvent} */ (ev).detail);
  });
  on('joined', (d) => {
    if (d.rejoined) say('Reconnected.');
    render();
  });
  on('resumed', () => {
    say('Reconnected.');
    render();
  });
  on('participant-joined', (p) => {
    say(`${p.name} joined.`);
    render();
  });
  on('participant-left', (d) => {
    if (d.participant && client.connectionState !== 'reconnecting') say(`${d.participant.name} left.`);
    render();
  });
  on('track', (d) => {
    state.media.set(d.trackId, d.track);
    render();
  });
  on('track-ended', (d) => {
    if (state.media.get(d.trackId) === d.track) state.media.delete(d.trackId);
    state.layers.delete(d.trackId);
    render();
  });
  on('track-published', () => render());
  on('track-unpublished', () => render());
  on('track-muted', () => render());
  on('track-updated', () => render());
  on('track-unsupported', () => render());
  on('speakers', (d) => {
    state.speakers = new Set(d.participants);
    markSpeakers();
  });
  on('connectionstatechange', (d) => setConnection(d.state));
  on('error', (e) => {
    if (e.request === 'join' && ui.callView.hidden) return; // the join form shows it
    if (e.request === 'layer' && e.code === 'not-found' && !client.tracks.has(state.layerRequests.get(e.id) ?? '')) {
      return; // the track went away before the request arrived
    }
    toast(errorTitle(e), `${e.message}${e.code ? ` (${e.code})` : ''}`);
  });
}

/** @param {{code: string, request?: string}} e */
function errorTitle(e) {
  switch (e.code) {
    case 'room-full': return 'The room is full';
    case 'unauthorized': return 'Not allowed to join';
    case 'room-not-found': return 'No such room';
    case 'forbidden': return 'Not allowed';
    case 'negotiation-failed': return 'Connection problem';
    case 'media-failed': return 'Media problem';
    default: return e.request ? `The server refused “${e.request}”` : 'Server error';
  }
}

// ---- controls ----

function toggleMic() {
  state.micMuted = !state.micMuted;
  if (state.pubs.mic && state.client) state.client.mute(state.pubs.mic, state.micMuted);
  else if (state.tracks.mic) state.tracks.mic.enabled = !state.micMuted;
  updateControls();
  render();
}

function toggleCamera() {
  state.camMuted = !state.camMuted;
  if (state.pubs.camera && state.client) state.client.mute(state.pubs.camera, state.camMuted);
  else if (state.tracks.camera) state.tracks.camera.enabled = !state.camMuted;
  updateControls();
  render();
}

async function toggleScreen() {
  const client = state.client;
  if (!client) return;
  if (state.tracks.screen) {
    stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (err) {
    if (/** @type {Error} */ (err).name !== 'NotAllowedError' && /** @type {Error} */ (err).name !== 'AbortError') {
      toast('Cannot share the screen', errText(err));
    }
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track || state.client !== client) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  track.contentHint = 'detail';
  track.addEventListener('ended', () => {
    if (state.tracks.screen === track) stopScreen();
  });
  state.tracks.screen = track;
  state.pubs.screen = client.publish(track, { source: 'screen', stream });
  updateControls();
  render();
}

function stopScreen() {
  if (state.pubs.screen && state.client) state.client.unpublish(state.pubs.screen);
  state.tracks.screen?.stop();
  state.tracks.screen = null;
  state.pubs.screen = null;
  updateControls();
  render();
}

function updateControls() {
  setToggle(ui.mic, state.micMuted, state.micMuted ? 'Unmute' : 'Mute', !state.tracks.mic);
  setToggle(ui.camera, state.camMuted, state.camMuted ? 'Start video' : 'Stop video', !state.tracks.camera);
  setToggle(ui.screen, !!state.tracks.screen, state.tracks.screen ? 'Stop sharing' : 'Share screen', false);
}

/**
 * Shows a control's state. The label says what a click does, so the
 * accessible name carries the state (no aria-pressed on top of it).
 * @param {HTMLElement} button
 * @param {boolean} active muted, camera off, or sharing
 * @param {string} label
 * @param {boolean} disabled
 */
function setToggle(button, active, label, disabled) {
  button.dataset.active = String(active);
  /** @type {HTMLElement} */ (button.querySelector('.label')).textContent = label;
  /** @type {HTMLButtonElement} */ (button).disabled = disabled;
}

async function openDevices() {
  await fillDeviceLists();
  ui.devices.showModal();
}

async function fillDeviceLists() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    devices = [];
  }
  fillSelect(ui.micSelect, devices.filter((d) => d.kind === 'audioinput'), state.tracks.mic, 'Microphone');
  fillSelect(ui.camSelect, devices.filter((d) => d.kind === 'videoinput'), state.tracks.camera, 'Camera');
}

/**
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {MediaStreamTrack|null} current
 * @param {string} noun
 */
function fillSelect(select, devices, current, noun) {
  const currentId = current?.getSettings().deviceId ?? '';
  select.replaceChildren(...devices.map((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `${noun} ${i + 1}`;
    o.selected = d.deviceId === currentId;
    return o;
  }));
  select.disabled = devices.length < 2 || !current;
}

/**
 * Switches to another microphone or camera, replacing the sent track
 * without renegotiation.
 * @param {'mic'|'camera'} which
 * @param {string} deviceId
 */
async function switchDevice(which, deviceId) {
  const old = state.tracks[which];
  if (!old || old.getSettings().deviceId === deviceId) return;
  const constraints = which === 'mic'
    ? { audio: { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } } }
    : { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } };
  let track;
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    track = which === 'mic' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  } catch (err) {
    toast(`Cannot use this ${which === 'mic' ? 'microphone' : 'camera'}`, errText(err));
    return;
  }
  track.enabled = !(which === 'mic' ? state.micMuted : state.camMuted);
  const pub = state.pubs[which];
  try {
    if (pub && state.client) await state.client.replaceTrack(pub, track);
  } catch (err) {
    track.stop();
    toast('Cannot switch devices', errText(err));
    return;
  }
  state.tracks[which] = track;
  old.stop();
  render();
}

async function copyShareLink() {
  const link = ui.shareLink.value;
  let ok = false;
  try {
    await navigator.clipboard.writeText(link);
    ok = true;
  } catch {
    ui.shareLink.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  ui.copyStatus.textContent = ok ? 'Link copied' : 'Select the link and copy it';
  setTimeout(() => { ui.copyStatus.textContent = ''; }, 3000);
}

// ---- tiles ----

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
 * @property {import('./sfu.js').TrackInfo|null} video the remote video track shown
 */

/** Brings the tiles in line with the state. */
function render() {
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
  for (const p of client.participants.values()) {
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
      key: `p:${p.id}`, participant: p.id, name: p.name, local: false, screen: false, tracks,
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

  const wanted = new Set(specs.map((s) => s.key));
  for (const [key, tile] of state.tiles) {
    if (!wanted.has(key)) {
      tile.video.srcObject = null;
      tile.el.remove();
      state.tiles.delete(key);
    }
  }
  let prev = null;
  for (const spec of specs) {
    let tile = state.tiles.get(spec.key);
    if (!tile) {
      tile = createTile(spec);
      state.tiles.set(spec.key, tile);
    }
    updateTile(tile, spec);
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
  caption.append(name, badge('mic-off', '#i-mic-off', 'Microphone muted'), badge('cam-off', '#i-cam-off', 'Camera off'));
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
function layoutGrid() {
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

function markSpeakers() {
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
function chooseLayers() {
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
    if (!info.layers.includes(rid)) rid = info.layers[info.layers.length - 1];
    if (state.layers.get(id) === rid) continue;
    state.layers.set(id, rid);
    const req = client.setLayer(id, /** @type {'q'|'h'|'f'} */ (rid));
    if (req) {
      state.layerRequests.set(req, id);
      if (state.layerRequests.size > 64) state.layerRequests.delete(state.layerRequests.keys().next().value ?? '');
    }
  }
}

// ---- small things ----

/** @param {import('./sfu.js').ConnectionState} s */
function setConnection(s) {
  const text = {
    new: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    disconnected: 'Connection unstable',
    reconnecting: 'Reconnecting…',
    failed: 'Disconnected',
    closed: 'Not connected',
  }[s] ?? s;
  ui.conn.dataset.state = s;
  ui.connText.textContent = text;
  refreshPath();
}

/** Looks up how the call's media flows and shows it; nothing unless connected. */
async function refreshPath() {
  const client = state.client;
  const lookup = ++state.pathLookups;
  const path = client?.connectionState === 'connected' ? await client.mediaPath() : null;
  if (lookup === state.pathLookups) showPath(path);
}

/** @param {import('./sfu.js').MediaPath|null} p */
function showPath(p) {
  const text = p ? PATH_TEXT[p.path] ?? p.path : '';
  if (ui.path.textContent !== text) ui.path.textContent = text; // unchanged text is not announced again
  ui.path.dataset.path = p?.path ?? '';
  ui.path.title = p ? `Local: ${p.local}\nRemote: ${p.remote}` : '';
  ui.path.hidden = !p;
}

/** @param {string} msg */
function showFormError(msg) {
  ui.joinError.textContent = msg;
  ui.joinError.hidden = !msg;
}

/**
 * Shows a message until dismissed (errors) or for a while (information).
 * @param {string} title
 * @param {string} message
 * @param {string} [action] label of an optional action button
 * @param {() => void} [onAction]
 * @returns {HTMLElement}
 */
function toast(title, message, action, onAction) {
  state.messages.push({ kind: action ? 'info' : 'error', title, message });
  if (state.messages.length > 100) state.messages.shift();
  const t = document.createElement('div');
  t.className = action ? 'toast info' : 'toast';
  t.setAttribute('role', 'alert');
  const body = document.createElement('div');
  const strong = document.createElement('strong');
  strong.textContent = title;
  const p = document.createElement('p');
  p.textContent = message;
  body.append(strong, p);
  t.append(body);
  if (action && onAction) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = action;
    b.addEventListener('click', () => { onAction(); t.remove(); });
    t.append(b);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'toast-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => t.remove());
  t.append(close);
  ui.toasts.append(t);
  while (ui.toasts.children.length > 4) ui.toasts.firstElementChild?.remove();
  setTimeout(() => t.remove(), 15_000);
  return t;
}

/** @param {string} msg */
function say(msg) {
  ui.announce.textContent = msg;
}

/** @param {unknown} err */
function errText(err) {
  return err instanceof Error ? err.message : String(err);
}

/** @param {string} name */
function initialsOf(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const first = [...(words[0] ?? '?')][0];
  const last = words.length > 1 ? [...words[words.length - 1]][0] : '';
  return (first + last).toUpperCase();
}

/** @param {string} s */
function hueOf(s) {
  let h = 0;
  for (const c of s) h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  return h;
}

/**
 * @param {() => void} f
 * @param {number} ms
 */
function debounce(f, ms) {
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(f, ms);
  };
}

init();
