// state.js: the page's elements and its state, shared by the page's
// modules (app.js and page/). The browser tests read the state through
// window.tessera.

/** @import { Publication, RelayTransport, SFUClient } from '../sfu.js' */

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export const ui = {
  joinView: byId('join-view'),
  joinForm: /** @type {HTMLFormElement} */ (byId('join-form')),
  room: /** @type {HTMLInputElement} */ (byId('room')),
  name: /** @type {HTMLInputElement} */ (byId('name')),
  joinError: byId('join-error'),
  joinButton: /** @type {HTMLButtonElement} */ (byId('join-button')),
  callView: byId('call-view'),
  roomLabel: byId('room-label'),
  rec: byId('rec'),
  watching: byId('watching'),
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

export const state = {
  /** @type {SFUClient|null} */
  client: null,
  room: '',
  /** Publish the camera in simulcast (off with ?simulcast=0). */
  simulcast: true,
  /** @type {string[]|undefined} the only video codecs to send and receive (?codec=h264) */
  videoCodecs: undefined,
  /** @type {RelayTransport|undefined} force the media through TURN over this transport (?relay=tcp) */
  relay: undefined,
  name: '',
  /** join token from the address's fragment (#token=…, as `sfu token --link` prints); never in the share link */
  token: '',
  /** @type {{mic: MediaStreamTrack|null, camera: MediaStreamTrack|null, screen: MediaStreamTrack|null}} */
  tracks: { mic: null, camera: null, screen: null },
  /** @type {{mic: Publication|null, camera: Publication|null, screen: Publication|null}} */
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
