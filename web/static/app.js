// app.js: the conference page, on top of sfu.js: joining and leaving, and
// the client's events. The rest of the page is in page/: state.js (its
// elements and state), tiles.js (the grid), controls.js (local media and
// the call's controls), status.js (indicators and messages).

import { SFUClient } from './sfu.js';
import { acquireMedia, initControls, stopLocalMedia, updateControls } from './page/controls.js';
import { state, ui } from './page/state.js';
import { errText, errorTitle, refreshPath, say, setConnection, showFormError, toast } from './page/status.js';
import { chooseLayers, layoutGrid, markSpeakers, render } from './page/tiles.js';

/** @import { RelayTransport } from './sfu.js' */

const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** @type {ReadonlyArray<string>} the values of ?relay= */
const RELAYS = ['udp', 'tcp', 'tls'];
/** How often (ms) the media path shown is looked up again during a call. */
const PATH_INTERVAL = 2000;

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
  state.relay = RELAYS.includes(relay) ? /** @type {RelayTransport} */ (relay) : undefined;
  ui.room.value = room;
  ui.name.value = name;
  ui.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    join(ui.room.value.trim(), ui.name.value.trim());
  });
  initControls();
  ui.leave.addEventListener('click', leave);
  window.addEventListener('resize', debounce(() => { layoutGrid(); chooseLayers(); }, 200));
  window.addEventListener('pagehide', () => state.client?.close());
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
  ui.rec.hidden = true;
  ui.watching.hidden = true;
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
    if (p.via !== 'whep') say(`${p.name} joined.`);
    render();
  });
  on('participant-left', (d) => {
    if (d.participant && d.participant.via !== 'whep' && client.connectionState !== 'reconnecting') say(`${d.participant.name} left.`);
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
  on('recording', (d) => {
    ui.rec.hidden = !d.recording;
  });
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
