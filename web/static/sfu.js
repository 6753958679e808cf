// sfu.js: a client for the tessera signaling protocol, version 1
// (docs/protocol.md). One WebSocket and one RTCPeerConnection per session;
// the client is the polite peer of perfect negotiation.
//
// Collisions are resolved without rollback: an offer is created, sent, and
// applied only once its answer arrives. When the server's offer comes
// instead (the server ignores ours), ours is simply dropped, the server's
// answered, and a new offer made. The protocol allows this, and it avoids
// rollback, which in Chromium breaks every later negotiation once a
// simulcast sender exists ("Failed to set local offer sdp") and can stall
// ICE gathering when it undoes the very first offer.
//
// A socket that breaks (no close frame, or a close the server did not mean
// as final) does not end the session: the peer connection and its media
// keep running while a new socket resumes the participant with the resume
// token from `joined` (docs/protocol.md, "Resuming"). Only when the server
// no longer knows the participant, or no socket gets through in time, is
// the session ended and the room joined afresh.

/**
 * Simulcast encodings for a camera: quarter, half and full resolution, with
 * the rids the server expects.
 * @type {ReadonlyArray<RTCRtpEncodingParameters>}
 */
export const SIMULCAST_ENCODINGS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 }),
]);

/**
 * Join errors after which reconnecting cannot help.
 * @type {ReadonlySet<string>}
 */
const FATAL_JOIN_CODES = new Set(['bad-request', 'unauthorized', 'room-not-found', 'already-joined']);

/**
 * Close codes after which a session is not resumed: the server ended it on
 * purpose (1000 after `leave`, 1001 shutting down, 1008 flooding, 1009 a
 * frame too large, 4000 removed, 4002 no join in time). Any other close,
 * 1006 (no close frame) first, may be the network: the session is resumed.
 * @type {ReadonlySet<number>}
 */
const FINAL_CLOSE_CODES = new Set([1000, 1001, 1008, 1009, 4000, 4002]);

/** A resume socket not open after this long (ms) is given up for a new one. */
const RESUME_OPEN_TIMEOUT = 4000;

/**
 * @typedef {object} TrackInfo A published track, as the server describes it.
 * @property {string} id Server track id.
 * @property {string} participant Publisher's participant id.
 * @property {'audio'|'video'} kind
 * @property {string[]} layers Simulcast rids, lowest quality first; empty without simulcast.
 * @property {boolean} muted
 * @property {string} codec The MIME type the publisher sends, e.g. `video/VP8`.
 * @property {string} [unsupported] Set when this client cannot receive the
 *   track: the server's explanation (the codec is one it does not decode).
 * @property {string} [mid] Only in the publisher's own copy: the mid it published on.
 */

/**
 * @typedef {object} ParticipantInfo
 * @property {string} id
 * @property {string} name
 * @property {TrackInfo[]} tracks In publication order.
 */

/**
 * @typedef {object} ServerError An `error` reply, or a failure of the client itself.
 * @property {string} code The protocol's code (`bad-request`, `room-full`, ...), or
 *   `negotiation-failed` / `media-failed` for a failure inside the browser.
 * @property {string} message
 * @property {string} [id] Id of the request it answers.
 * @property {string} [request] Type of that request (`join`, `offer`, `mute`, ...).
 */

/**
 * @typedef {'new'|'connecting'|'connected'|'disconnected'|'reconnecting'|'failed'|'closed'} ConnectionState
 * `connecting`: joining or waiting for ICE; `disconnected`: media interrupted
 * while the socket stays up; `reconnecting`: the socket dropped and the
 * session is being resumed (media keeps flowing meanwhile) or a new one is
 * on its way; `failed`: the client gave up; `closed`: left.
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] WebSocket URL; defaults to `/ws` on the page's host.
 * @property {boolean} [reconnect=true] Reconnect when the socket drops.
 * @property {boolean} [resume=true] Resume the session (same participant,
 *   peer connection and publications) when the socket breaks, before
 *   falling back to a new join; needs `reconnect`.
 * @property {number} [resumeTimeout=12000] How long (ms) to try resuming
 *   before joining afresh; keep it below the server's `rooms.resume_grace`
 *   (15 s by default).
 * @property {number} [minDelay=500] First reconnection delay, in ms.
 * @property {number} [maxDelay=10000] Largest reconnection delay, in ms.
 * @property {RTCConfiguration} [rtcConfig] Extra RTCPeerConnection settings;
 *   the server's `iceServers` are added to them.
 * @property {RelayTransport} [relay] Force the media through a TURN relay
 *   reached over this transport: ICE uses relay candidates only
 *   (`iceTransportPolicy: 'relay'`) and of the ICE servers (`rtcConfig`'s
 *   and the server's) only the TURN URLs of that transport are kept (`udp`:
 *   `turn:` with `transport=udp` or none; `tcp`: `turn:` with
 *   `transport=tcp`; `tls`: `turns:`). For diagnosis and tests; without a
 *   TURN server of that transport the media cannot connect.
 */

/**
 * @typedef {'udp'|'tcp'|'tls'} RelayTransport How a client reaches a TURN server.
 */

/**
 * @typedef {object} MediaPath How the media of a peer connection flows, from
 * its selected ICE candidate pair.
 * @property {'udp'|'tcp'|'relay-udp'|'relay-tcp'|'relay-tls'} path `udp` or
 *   `tcp`: directly to the server; `relay-*`: through a TURN server reached
 *   over UDP, TCP or TLS.
 * @property {string} local The local candidate, e.g. `relay 10.0.0.1:5000 udp via tcp`.
 * @property {string} remote The remote candidate, e.g. `host 192.0.2.7:3478 udp`.
 */

/** @type {ReadonlyArray<RelayTransport>} */
const RELAY_TRANSPORTS = Object.freeze(['udp', 'tcp', 'tls']);

/**
 * A track this client publishes. It survives reconnections: after a new
 * join it is published again and gets a new server id.
 */
export class Publication {
  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {{simulcast?: boolean, source?: string, muted?: boolean}} opts
   */
  constructor(track, stream, opts) {
    /** @type {MediaStreamTrack} The track being sent. */
    this.track = track;
    /** @type {MediaStream} The stream given to addTransceiver. */
    this.stream = stream;
    /** @type {'audio'|'video'} */
    this.kind = /** @type {'audio'|'video'} */ (track.kind);
    /** @type {string} A free label for the application (`camera`, `screen`, ...). */
    this.source = opts.source ?? track.kind;
    /** @type {boolean} Whether it was published with simulcast encodings. */
    this.simulcast = false;
    /** @type {boolean} */
    this.muted = !!opts.muted;
    /** @type {string|null} The server's track id, once announced. */
    this.id = null;
    /** @type {RTCRtpTransceiver|null} The transceiver of the current session. */
    this.transceiver = null;
    /** @internal */
    this.wantSimulcast = !!opts.simulcast && track.kind === 'video';
  }
}

/**
 * One connection to the server: a WebSocket and a peer connection. Replaced
 * on every reconnection; callbacks of an old session are ignored.
 * @internal
 */
class Session {
  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    this.joined = false;
    this.closed = false;
    /** @type {string|null} id of our offer awaiting an answer */
    this.pendingOffer = null;
    /** @type {string|null} that offer, applied only when its answer comes */
    this.pendingSdp = null;
    /** Signature of the directions of the offer in flight. */
    this.offerSig = '';
    /** Signature of the directions the last answered offer carried. */
    this.answeredSig = '';
    /** @type {Promise<void>} serializes every change to pc */
    this.queue = Promise.resolve();
    /** @type {Set<RTCRtpTransceiver>} transceivers we publish on */
    this.own = new Set();
    /** @type {RTCRtpTransceiver[]} own transceivers left inactive, for reuse */
    this.spare = [];
    /** @type {Map<string, {stream: string, track: string}>} mid -> a=msid of the server's last offer */
    this.msids = new Map();
    /** @type {Map<string, {track: MediaStreamTrack, transceiver: RTCRtpTransceiver, participant: string}>} by server track id */
    this.remote = new Map();
    /** @type {string|null} id of the join request */
    this.joinId = null;
    /** The socket broke: the peer connection is kept while new sockets try to resume. */
    this.resuming = false;
    /** Resume sockets opened since the socket broke. */
    this.resumeAttempt = 0;
    /** @type {string|null} id of the resume request on the current socket */
    this.resumeId = null;
    /** @type {ReturnType<typeof setTimeout>|null} gives up resuming */
    this.resumeTimer = null;
    /** @type {ReturnType<typeof setTimeout>|null} gives up a resume socket that does not open */
    this.openTimer = null;
    /** @type {Set<string>} tracks whose `layer` request could not be sent while resuming */
    this.unsentLayers = new Set();
    /** An ICE restart was asked for: offers carry new credentials until one is answered. */
    this.iceRestart = false;
    /** Whether the offer in flight was made after the ICE restart was asked for. */
    this.offerRestart = false;
  }
}

/**
 * The conference client.
 *
 * Connection loss. When the socket closes after a successful join, the
 * client tells two cases apart by the close code:
 * - The server ended the session on purpose (1000, 1001, 1008, 1009, 4000,
 *   4002): the session ends (every participant is reported gone, remote
 *   tracks ended) and, unless `reconnect` is off, the client joins again
 *   with backoff and republishes every publication under new track ids.
 * - Anything else, 1006 (the socket broke without a close frame) first: the
 *   session is resumed. The peer connection and its media keep running;
 *   new sockets, with backoff, send `resume` with the token from `joined`
 *   for up to `resumeTimeout`. On `resumed` the session goes on as before
 *   (same participant id, peer connection, publications and track ids): the
 *   room is brought up to date from the server's snapshot, emitting
 *   `participant-left`, `participant-joined`, `track-published`,
 *   `track-unpublished` and `track-muted` for what changed while away and
 *   nothing for the rest; requests that could not be sent meanwhile (mute,
 *   layer, a renegotiation) are sent; simulcast layers switched off are
 *   switched on again (a `layers` sent while away was lost); and when ICE
 *   is `disconnected` or `failed` it is restarted. If the server no longer
 *   knows the participant (its grace period passed) or no socket got
 *   through in time, the session ends and the room is joined afresh, as
 *   above. The state is `reconnecting` meanwhile.
 *
 * Events (all `CustomEvent`s; the payload is in `detail`):
 * - `joined` `{participant: {id, name}, participants: ParticipantInfo[], rejoined: boolean}`
 * - `resumed` `{participant: {id, name}, participants: ParticipantInfo[]}`: the
 *   session survived a broken socket; the events bringing the room up to date
 *   came just before
 * - `participant-joined` `ParticipantInfo` (a participant found on resuming
 *   comes with its tracks, without separate `track-published`)
 * - `participant-left` `{id, participant: ParticipantInfo|undefined}`
 * - `track` `{track: MediaStreamTrack, participant, trackId, info: TrackInfo, transceiver}`:
 *   a remote track started arriving (participant = `streams[0].id`, trackId = the
 *   server's track id, both from the server's `a=msid`)
 * - `track-ended` `{track, participant, trackId}`: a remote track stopped arriving
 * - `track-published` `{track: TrackInfo, local: boolean, publication?: Publication}`
 * - `track-unpublished` `{id, track: TrackInfo|undefined}`
 * - `track-muted` `{id, muted, track: TrackInfo|undefined}`
 * - `speakers` `{participants: string[]}` loudest first
 * - `layers` `{id, active: string[]}`: which simulcast layers of our track `id`
 *   somebody needs; the others were switched off
 * - `token-expiring` `{expires}` (milliseconds since 1970): the join token
 *   runs out then and the participant will be removed, unless
 *   {@link SFUClient#refresh} presents a fresh one
 * - `error` `ServerError`
 * - `connectionstatechange` `{state: ConnectionState}`
 * - `reconnecting` `{attempt, delay, resume: boolean}`: a new socket opens
 *   in `delay` ms, to resume the session or to join afresh
 *
 * ICE servers. The peer connection uses `rtcConfig.iceServers` followed by
 * the server's `iceServers` from `joined` (with its embedded TURN server:
 * credentials of this participant, short-lived). A `resumed` message
 * carries fresh ones, which the live peer connection takes over, so a long
 * call keeps working TURN credentials. The `relay` option forces a TURN
 * path; {@link SFUClient#mediaPath} tells which path the media took.
 */
export class SFUClient extends EventTarget {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.options = {
      url: `${scheme}//${location.host}/ws`,
      reconnect: true,
      resume: true,
      resumeTimeout: 12_000,
      minDelay: 500,
      maxDelay: 10_000,
      rtcConfig: {},
      ...options,
    };
    const { relay } = this.options;
    if (relay !== undefined && !RELAY_TRANSPORTS.includes(relay)) {
      throw new TypeError(`relay must be one of ${RELAY_TRANSPORTS.join(', ')}, not ${String(relay)}`);
    }
    /** @type {string|null} Our participant id in the current session. */
    this.participantId = null;
    /** @type {string} */
    this.room = '';
    /** @type {string} */
    this.name = '';
    /** @type {Map<string, ParticipantInfo>} The other participants, by id. */
    this.participants = new Map();
    /** @type {Map<string, TrackInfo>} Every published track of the room, ours included. */
    this.tracks = new Map();
    /** @type {Publication[]} Our publications. */
    this.publications = [];
    /** @type {ConnectionState} */
    this.connectionState = 'new';
    /** @type {string|null} The secret from `joined` that resumes this participant. */
    this.resumeToken = null;
    /** @type {Map<string, string>} The simulcast layer last asked per track, by {@link setLayer}. */
    this.layerPrefs = new Map();

    /** @type {Session|null} */
    this.session = null;
    this.nextId = 1;
    /** @type {Map<string, string>} request id -> request type, for error replies */
    this.requests = new Map();
    /** @type {Map<string, {resolve: (v: {expires: number}) => void, reject: (e: any) => void}>} refresh requests by id */
    this.refreshes = new Map();
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.retryTimer = null;
    this.joinOpts = {};
    /** @type {{resolve: (v: any) => void, reject: (e: any) => void}|null} */
    this.joining = null;
    this.everJoined = false;
    this.stopped = false;
  }

  /** @returns {RTCPeerConnection|null} The peer connection of the current session. */
  get pc() {
    return this.session?.pc ?? null;
  }

  /**
   * Joins a room. Resolves with the `joined` payload; rejects with a
   * {@link ServerError} when the server refuses or the socket cannot open.
   * After a successful join, a broken socket is resumed, or the room joined
   * again (same room and name) with every publication republished: see
   * {@link SFUClient}.
   * @param {string} room
   * @param {string} name
   * @param {{token?: string, autoSubscribe?: boolean, videoCodecs?: string[]}} [opts]
   *   videoCodecs restricts the video codecs this client sends and says it
   *   decodes to these MIME types (e.g. `['video/H264']`).
   * @returns {Promise<{participant: {id: string, name: string}, participants: ParticipantInfo[]}>}
   */
  join(room, name, opts = {}) {
    if (this.session || this.everJoined) {
      return Promise.reject(new Error('already joined: create a new client'));
    }
    this.room = room;
    this.name = name;
    this.joinOpts = opts;
    this.stopped = false;
    return new Promise((resolve, reject) => {
      this.joining = { resolve, reject };
      this.connect();
    });
  }

  /**
   * Publishes a local track on its own transceiver (never addTrack, so it
   * never shares an m-line with what the server sends).
   * @param {MediaStreamTrack} track
   * @param {{stream?: MediaStream, simulcast?: boolean, source?: string, muted?: boolean}} [opts]
   *   `simulcast`: send the q/h/f layers (video only, where the browser can);
   *   `muted`: start muted (the track is disabled and the server told).
   * @returns {Publication}
   */
  publish(track, opts = {}) {
    const pub = new Publication(track, opts.stream ?? new MediaStream([track]), opts);
    track.enabled = !pub.muted;
    this.publications.push(pub);
    const s = this.session;
    if (s?.pc) this.attach(s, pub);
    return pub;
  }

  /**
   * Stops publishing: the transceiver turns inactive and is renegotiated;
   * the server then announces `track-unpublished`. The track itself is
   * left running (stop it if it is no longer needed).
   * @param {Publication} pub
   */
  unpublish(pub) {
    const i = this.publications.indexOf(pub);
    if (i < 0) return;
    this.publications.splice(i, 1);
    const s = this.session;
    const tr = pub.transceiver;
    pub.transceiver = null;
    pub.id = null;
    if (s?.pc && tr && s.own.has(tr) && tr.currentDirection !== 'stopped') {
      tr.direction = 'inactive';
      tr.sender.replaceTrack(null).catch(() => {});
      s.spare.push(tr);
      this.negotiate(s);
    }
  }

  /**
   * Mutes or unmutes a publication: the track is disabled (so nothing is
   * captured into the stream) and the server told, which stops forwarding
   * it and tells everyone.
   * @param {Publication} pub
   * @param {boolean} muted
   */
  mute(pub, muted) {
    pub.muted = muted;
    pub.track.enabled = !muted;
    if (pub.id) this.send({ type: 'mute', track: pub.id, muted });
  }

  /**
   * Presents a fresh join token before the session's one expires (the
   * server sends `token-expiring` a minute before it removes the
   * participant). It must open the same room with the same permissions and
   * name; a rejoin uses it too. Resolves with the session's new end.
   * @param {string} token
   * @returns {Promise<{expires: number}>} expires in milliseconds since 1970
   */
  refresh(token) {
    const id = this.send({ type: 'refresh', token });
    if (!id) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      this.refreshes.set(id, {
        resolve: (v) => {
          this.joinOpts = { ...this.joinOpts, token };
          resolve(v);
        },
        reject,
      });
    });
  }

  /**
   * Switches the track a publication sends (another camera or microphone)
   * without renegotiating.
   * @param {Publication} pub
   * @param {MediaStreamTrack} track Of the same kind.
   * @returns {Promise<void>}
   */
  async replaceTrack(pub, track) {
    if (track.kind !== pub.kind) throw new TypeError(`cannot replace a ${pub.kind} track with a ${track.kind} one`);
    track.enabled = !pub.muted;
    pub.stream.removeTrack(pub.track);
    pub.stream.addTrack(track);
    pub.track = track;
    if (pub.transceiver) await pub.transceiver.sender.replaceTrack(track);
  }

  /**
   * Subscribes to tracks (useful with `autoSubscribe: false`).
   * @param {string[]} trackIds
   * @returns {string|null} the request id, or null when not connected
   */
  subscribe(trackIds) {
    return this.send({ type: 'subscribe', tracks: trackIds });
  }

  /**
   * Ends subscriptions.
   * @param {string[]} trackIds
   * @returns {string|null} the request id, or null when not connected
   */
  unsubscribe(trackIds) {
    return this.send({ type: 'unsubscribe', tracks: trackIds });
  }

  /**
   * Asks for at most this simulcast layer of a subscribed track.
   * @param {string} trackId
   * @param {'q'|'h'|'f'} rid
   * @returns {string|null} the request id, or null when not connected
   */
  setLayer(trackId, rid) {
    this.layerPrefs.set(trackId, rid);
    const s = this.session;
    const id = this.send({ type: 'layer', track: trackId, rid });
    if (!id && s?.resuming) s.unsentLayers.add(trackId);
    return id;
  }

  /**
   * The simulcast layer last asked for a track with {@link setLayer} in this
   * session, if any.
   * @param {string} trackId
   * @returns {string|undefined}
   */
  layer(trackId) {
    return this.layerPrefs.get(trackId);
  }

  /**
   * Restarts ICE: the next offer carries new ICE credentials, and the
   * server's answer reconnects the media on whatever network is there now.
   * The client does it by itself after resuming a session whose ICE was
   * `disconnected` or `failed`.
   */
  restartIce() {
    const s = this.session;
    if (!s?.pc || s.closed) return;
    s.iceRestart = true;
    s.pc.restartIce();
    this.negotiate(s);
  }

  /**
   * Statistics of the current peer connection (empty between sessions).
   * @returns {Promise<RTCStatsReport|Map<string, any>>}
   */
  async getStats() {
    return this.pc ? this.pc.getStats() : new Map();
  }

  /**
   * How the media flows: directly to the server over UDP or TCP, or through
   * a TURN relay (reached over UDP, TCP or TLS), from the peer connection's
   * selected ICE candidate pair. Null until the peer connection is
   * connected, and when the browser names no selected pair.
   * @returns {Promise<MediaPath|null>}
   */
  async mediaPath() {
    const pc = this.pc;
    if (!pc || pc.connectionState !== 'connected') return null;
    try {
      return selectedPath(await pc.getStats());
    } catch {
      return null; // closed meanwhile
    }
  }

  /**
   * Leaves the room: the server removes us and closes the socket. The
   * client cannot be joined again; local tracks are left to the caller.
   */
  leave() {
    const s = this.session;
    this.stopped = true;
    this.clearRetry();
    if (s && s.ws.readyState === WebSocket.OPEN && s.joined) {
      s.ws.send(JSON.stringify({ type: 'leave' }));
    }
    this.endSession(s, 1000, 'left');
    this.rejectJoin({ code: 'closed', message: 'left before joining' });
    this.setState('closed');
  }

  /** Closes the connection at once, without a `leave` (the server notices the socket closing). */
  close() {
    this.stopped = true;
    this.clearRetry();
    this.endSession(this.session, 1000, 'closed');
    this.rejectJoin({ code: 'closed', message: 'closed before joining' });
    this.setState('closed');
  }

  // ---- sessions ----

  /** @private */
  connect() {
    let ws;
    try {
      ws = new WebSocket(this.options.url);
    } catch (err) {
      this.rejectJoin({ code: 'connection-failed', message: String(err) });
      this.setState('failed');
      return;
    }
    const s = new Session(ws);
    this.session = s;
    this.setState(this.everJoined ? 'reconnecting' : 'connecting');
    this.bindSocket(s, ws, () => {
      const msg = { type: 'join', room: this.room, name: this.name };
      if (this.joinOpts.token) msg.token = this.joinOpts.token;
      if (this.joinOpts.autoSubscribe === false) msg.autoSubscribe = false;
      const codecs = decodableCodecs(this.joinOpts.videoCodecs);
      if (codecs) msg.codecs = codecs;
      s.joinId = this.send(msg, s);
    });
  }

  /**
   * Makes ws the session's socket. Only the session's current socket is
   * listened to: a socket it replaced is ignored.
   * @private
   * @param {Session} s
   * @param {WebSocket} ws
   * @param {() => void} onopen sends the first message
   */
  bindSocket(s, ws, onopen) {
    s.ws = ws;
    const current = () => this.session === s && s.ws === ws;
    ws.onopen = () => {
      if (current()) onopen();
    };
    ws.onmessage = (ev) => {
      if (!current()) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(s, msg);
    };
    ws.onclose = (ev) => {
      if (current()) this.onSocketClosed(s, ev);
    };
  }

  /**
   * @private
   * @param {Session} s
   * @param {CloseEvent} ev
   */
  onSocketClosed(s, ev) {
    if (this.session !== s) return;
    const final = FINAL_CLOSE_CODES.has(ev.code);
    if (!this.stopped && !final && s.resuming) {
      this.retryResume(s);
      return;
    }
    if (!this.stopped && !final && s.joined && this.resumeToken
      && this.options.reconnect && this.options.resume) {
      this.startResume(s);
      return;
    }
    this.endSession(s);
    if (this.stopped) return;
    if (!this.everJoined) {
      const why = ev.reason || (ev.code === 1006 ? 'the server cannot be reached' : `code ${ev.code}`);
      this.rejectJoin({ code: 'connection-failed', message: `connection closed: ${why}` });
      this.setState('failed');
      return;
    }
    if (!this.options.reconnect) {
      this.setState('failed');
      return;
    }
    this.scheduleReconnect();
  }

  /** @private */
  scheduleReconnect() {
    const base = Math.min(this.options.maxDelay, this.options.minDelay * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.setState('reconnecting');
    this.emit('reconnecting', { attempt: this.attempt, delay, resume: false });
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  /** @private */
  clearRetry() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  // ---- resuming ----

  /**
   * The socket broke: the session is kept, and a new socket resumes it.
   * @private
   * @param {Session} s
   */
  startResume(s) {
    s.resuming = true;
    s.resumeAttempt = 0;
    // The answer to an offer in flight went with the socket. The server may
    // have applied the offer: the same one (same mids) is sent again once
    // resumed, so pendingSdp is kept.
    s.pendingOffer = null;
    s.resumeTimer = setTimeout(() => {
      s.resumeTimer = null;
      if (this.session === s && s.resuming) this.abandonResume(s);
    }, this.options.resumeTimeout);
    this.setState('reconnecting');
    this.emit('reconnecting', { attempt: 1, delay: 0, resume: true });
    this.openResumeSocket(s);
  }

  /**
   * A resume socket closed or did not open: another one after a while,
   * until resumeTimeout has passed since the socket broke.
   * @private
   * @param {Session} s
   */
  retryResume(s) {
    this.clearOpenTimer(s);
    const base = Math.min(2000, 250 * 2 ** (s.resumeAttempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    if (s.resumeTimer === null) {
      this.abandonResume(s);
      return;
    }
    this.emit('reconnecting', { attempt: s.resumeAttempt + 1, delay, resume: true });
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped && this.session === s && s.resuming) this.openResumeSocket(s);
    }, delay);
  }

  /**
   * @private
   * @param {Session} s
   */
  openResumeSocket(s) {
    s.resumeAttempt++;
    s.resumeId = null;
    let ws;
    try {
      ws = new WebSocket(this.options.url);
    } catch {
      this.abandonResume(s);
      return;
    }
    this.bindSocket(s, ws, () => {
      this.clearOpenTimer(s);
      s.resumeId = this.send({ type: 'resume', token: this.resumeToken }, s);
    });
    s.openTimer = setTimeout(() => {
      s.openTimer = null;
      if (this.session !== s || s.ws !== ws || ws.readyState !== WebSocket.CONNECTING) return;
      // Given up (closed if it opens after all: closing a socket still
      // connecting makes the browser log an error).
      ws.onmessage = null;
      ws.onclose = null;
      ws.onopen = () => ws.close(1000, 'given up');
      this.retryResume(s);
    }, RESUME_OPEN_TIMEOUT);
  }

  /**
   * The server resumed the session: the room is brought up to date and
   * what could not be sent meanwhile is sent.
   * @private
   * @param {Session} s
   * @param {any} msg
   */
  onResumed(s, msg) {
    if (!s.resuming || msg.id !== s.resumeId) return;
    const self = normParticipant(msg.participant ?? {});
    if (self.id !== this.participantId) {
      this.abandonResume(s); // not us: cannot happen with our own token
      return;
    }
    this.stopResuming(s);
    this.attempt = 0;
    // Each token resumes once: the next resume needs the new one.
    if (typeof msg.resumeToken === 'string' && msg.resumeToken) this.resumeToken = msg.resumeToken;
    if (Array.isArray(msg.iceServers)) this.renewIceServers(s, msg.iceServers);
    this.updateState(s);
    this.reconcile(s, self, (msg.participants ?? []).map(normParticipant));
    for (const pub of this.publications) {
      const t = pub.id ? self.tracks.find((x) => x.id === pub.id) : undefined;
      if (t && t.muted !== pub.muted) this.send({ type: 'mute', track: t.id, muted: pub.muted }, s);
    }
    for (const id of s.unsentLayers) {
      const rid = this.layerPrefs.get(id);
      if (rid && this.tracks.has(id)) this.send({ type: 'layer', track: id, rid }, s);
    }
    s.unsentLayers.clear();
    this.emit('resumed', { participant: { id: self.id, name: self.name }, participants: [...this.participants.values()] });
    this.enqueue(s, () => this.afterResume(s));
  }

  /**
   * Brings the room up to date with the server's snapshot, emitting events
   * for the differences only.
   * @private
   * @param {Session} s
   * @param {ParticipantInfo} self
   * @param {ParticipantInfo[]} others
   */
  reconcile(s, self, others) {
    const now = new Map(others.map((p) => [p.id, p]));
    for (const [id, p] of [...this.participants]) {
      if (now.has(id)) continue;
      for (const t of [...p.tracks]) this.onTrackUnpublished(s, t.id);
      this.participants.delete(id);
      this.emit('participant-left', { id, participant: p });
    }
    for (const np of others) {
      const p = this.participants.get(np.id);
      if (!p) {
        this.participants.set(np.id, np);
        for (const t of np.tracks) this.tracks.set(t.id, t);
        this.emit('participant-joined', np);
        continue;
      }
      this.reconcileTracks(s, p.tracks, np.tracks);
      p.tracks = np.tracks.map((t) => this.tracks.get(t.id) ?? t);
    }
    // Our own tracks: one the server took just before the socket broke may
    // not have been announced to us.
    const mine = [...this.tracks.values()].filter((t) => t.participant === self.id);
    this.reconcileTracks(s, mine, self.tracks);
  }

  /**
   * @private
   * @param {Session} s
   * @param {TrackInfo[]} had
   * @param {TrackInfo[]} has
   */
  reconcileTracks(s, had, has) {
    const ids = new Set(has.map((t) => t.id));
    for (const t of had) {
      if (ids.has(t.id)) continue;
      const pub = this.publications.find((x) => x.id === t.id);
      if (pub) pub.id = null;
      this.onTrackUnpublished(s, t.id);
    }
    for (const t of has) {
      const known = this.tracks.get(t.id);
      if (!known) {
        if (t.participant === this.participantId) {
          const pub = this.publications.find((x) => !x.id && x.kind === t.kind && x.transceiver);
          if (pub) pub.id = t.id;
          this.tracks.set(t.id, t);
          this.emit('track-published', { track: t, local: true, publication: pub });
        } else {
          this.onTrackPublished(s, t);
        }
      } else if (known.muted !== t.muted && t.participant !== this.participantId) {
        known.muted = t.muted;
        this.emit('track-muted', { id: t.id, muted: t.muted, track: known });
      }
    }
  }

  /**
   * The peer connection's side of a resume, in the negotiation queue.
   * @private
   * @param {Session} s
   */
  async afterResume(s) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    if (s.pendingSdp !== null) {
      // The offer whose answer was lost (null when the socket broke again:
      // sent after the next resume).
      s.pendingOffer = this.send({ type: 'offer', sdp: s.pendingSdp }, s);
    }
    for (const pub of this.publications) {
      const sender = pub.transceiver?.sender;
      if (!sender) continue;
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length < 2 || params.encodings.every((e) => e.active !== false)) continue;
      for (const enc of params.encodings) enc.active = true;
      await sender.setParameters(params);
    }
    if (pc.iceConnectionState === 'disconnected' || pc.iceConnectionState === 'failed') {
      this.restartIce();
    } else {
      this.negotiate(s); // a change made while away
    }
  }

  /**
   * Resuming failed (the server no longer knows us, or no socket got
   * through in time): the session ends and the room is joined afresh.
   * @private
   * @param {Session} s
   */
  abandonResume(s) {
    this.stopResuming(s);
    this.endSession(s);
    if (!this.stopped) this.scheduleReconnect();
  }

  /**
   * @private
   * @param {Session} s
   */
  stopResuming(s) {
    s.resuming = false;
    s.resumeId = null;
    this.clearOpenTimer(s);
    if (s.resumeTimer !== null) clearTimeout(s.resumeTimer);
    s.resumeTimer = null;
    this.clearRetry();
  }

  /**
   * @private
   * @param {Session} s
   */
  clearOpenTimer(s) {
    if (s.openTimer !== null) clearTimeout(s.openTimer);
    s.openTimer = null;
  }

  /**
   * Ends a session: socket and peer connection closed, the room forgotten
   * (everyone is reported gone; a new `joined` brings them back).
   * @private
   * @param {Session|null} s
   * @param {number} [code]
   * @param {string} [reason]
   */
  endSession(s, code = 1000, reason = '') {
    if (!s || s.closed) return;
    s.closed = true;
    if (s.resuming) this.stopResuming(s);
    if (this.session === s) this.session = null;
    if (s.ws.readyState === WebSocket.OPEN) {
      s.ws.close(code, reason);
    } else if (s.ws.readyState === WebSocket.CONNECTING) {
      // Closing a socket still connecting makes the browser log an error.
      s.ws.onopen = () => s.ws.close(code, reason);
    }
    for (const [trackId, r] of s.remote) {
      this.emit('track-ended', { track: r.track, participant: r.participant, trackId });
    }
    s.remote.clear();
    s.pc?.close();
    for (const pub of this.publications) {
      pub.transceiver = null;
      pub.id = null;
    }
    for (const [id, p] of [...this.participants]) {
      this.participants.delete(id);
      this.emit('participant-left', { id, participant: p });
    }
    this.tracks.clear();
    this.layerPrefs.clear();
    this.participantId = null;
    this.resumeToken = null;
  }

  // ---- messages ----

  /**
   * Sends a request with a fresh id; returns the id, or null when the socket
   * is not open.
   * @private
   * @param {Record<string, any>} msg
   * @param {Session|null} [s]
   * @returns {string|null}
   */
  send(msg, s = this.session) {
    if (!s || s.ws.readyState !== WebSocket.OPEN) return null;
    if (msg.type !== 'join' && !s.joined) return null;
    if (s.resuming && msg.type !== 'resume') return null; // sent once resumed
    const id = String(this.nextId++);
    this.requests.set(id, msg.type);
    if (this.requests.size > 256) this.requests.delete(this.requests.keys().next().value);
    s.ws.send(JSON.stringify({ ...msg, id }));
    return id;
  }

  /**
   * @private
   * @param {Session} s
   * @param {any} msg
   */
  handle(s, msg) {
    switch (msg.type) {
      case 'joined':
        this.onJoined(s, msg);
        break;
      case 'resumed':
        this.onResumed(s, msg);
        break;
      case 'offer':
        this.enqueue(s, () => this.applyOffer(s, msg.sdp));
        break;
      case 'answer':
        this.enqueue(s, () => this.applyAnswer(s, msg));
        break;
      case 'candidate':
        this.enqueue(s, () => this.addCandidate(s, msg.candidate));
        break;
      case 'participant-joined': {
        const p = normParticipant(msg.participant);
        this.participants.set(p.id, p);
        for (const t of p.tracks) this.tracks.set(t.id, t);
        this.emit('participant-joined', p);
        break;
      }
      case 'participant-left': {
        const p = this.participants.get(msg.participant);
        this.participants.delete(msg.participant);
        if (p) for (const t of p.tracks) this.tracks.delete(t.id);
        this.emit('participant-left', { id: msg.participant, participant: p });
        break;
      }
      case 'track-published':
        if (msg.track?.participant === this.participantId) {
          // Ours: its mid is known once the answer is applied, which is queued.
          this.enqueue(s, async () => this.onTrackPublished(s, msg.track));
        } else {
          this.onTrackPublished(s, msg.track);
        }
        break;
      case 'track-unpublished':
        this.onTrackUnpublished(s, msg.track);
        break;
      case 'track-updated': {
        const t = this.tracks.get(msg.track?.id);
        if (t) {
          t.codec = String(msg.track.codec ?? '');
          delete t.unsupported; // the server says again if it still is
        }
        this.emit('track-updated', { id: msg.track?.id, track: t });
        break;
      }
      case 'track-unsupported': {
        const t = this.tracks.get(msg.track);
        if (t) t.unsupported = String(msg.message ?? `this client does not decode ${msg.codec}`);
        this.emit('track-unsupported', { id: msg.track, codec: msg.codec, track: t });
        break;
      }
      case 'track-muted': {
        const t = this.tracks.get(msg.track);
        if (t) t.muted = !!msg.muted;
        this.emit('track-muted', { id: msg.track, muted: !!msg.muted, track: t });
        break;
      }
      case 'speakers':
        this.emit('speakers', { participants: Array.isArray(msg.participants) ? msg.participants : [] });
        break;
      case 'layers':
        this.enqueue(s, async () => this.onLayers(msg.track, Array.isArray(msg.active) ? msg.active : []));
        break;
      case 'token-expiring':
        this.emit('token-expiring', { expires: Number(msg.expires) * 1000 });
        break;
      case 'refreshed': {
        const r = this.refreshes.get(msg.id);
        this.refreshes.delete(msg.id);
        r?.resolve({ expires: Number(msg.expires) * 1000 });
        break;
      }
      case 'error':
        this.onError(s, msg);
        break;
      default:
        break; // newer servers may send more
    }
  }

  /**
   * The server says which simulcast layers of one of our tracks somebody
   * needs: the others stop being encoded (and sent) until needed again.
   * @private
   * @param {string} trackId
   * @param {string[]} active
   */
  async onLayers(trackId, active) {
    const pub = this.publications.find((p) => p.id === trackId);
    const sender = pub?.transceiver?.sender;
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const enc of params.encodings) {
      const on = !enc.rid || active.includes(enc.rid);
      if (enc.active !== on) {
        enc.active = on;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
    this.emit('layers', { id: trackId, active });
  }

  /**
   * @private
   * @param {Session} s
   * @param {any} msg
   */
  onJoined(s, msg) {
    s.joined = true;
    const rejoined = this.everJoined;
    this.everJoined = true;
    this.attempt = 0;
    this.participantId = msg.participant.id;
    this.resumeToken = typeof msg.resumeToken === 'string' && msg.resumeToken ? msg.resumeToken : null;
    this.participants.clear();
    this.tracks.clear();
    const participants = (msg.participants ?? []).map(normParticipant);
    for (const p of participants) {
      this.participants.set(p.id, p);
      for (const t of p.tracks) this.tracks.set(t.id, t);
    }
    this.createPeerConnection(s, msg.iceServers ?? []);
    this.setState('connecting');
    const detail = { participant: msg.participant, participants, rejoined };
    if (this.joining) {
      this.joining.resolve(detail);
      this.joining = null;
    }
    this.emit('joined', detail);
    for (const pub of this.publications) this.attach(s, pub);
    this.updateState(s);
  }

  /**
   * @private
   * @param {Session} s
   * @param {TrackInfo} raw
   */
  onTrackPublished(s, raw) {
    const t = normTrack(raw);
    this.tracks.set(t.id, t);
    const local = t.participant === this.participantId;
    let publication;
    if (local) {
      publication = this.publications.find((p) => p.transceiver && p.transceiver.mid === raw.mid);
      if (publication) {
        publication.id = t.id;
        if (publication.muted) this.send({ type: 'mute', track: t.id, muted: true }, s);
      }
    } else {
      const p = this.participants.get(t.participant);
      if (p && !p.tracks.some((x) => x.id === t.id)) p.tracks.push(t);
    }
    this.emit('track-published', { track: t, local, publication });
  }

  /**
   * @private
   * @param {Session} s
   * @param {string} id
   */
  onTrackUnpublished(s, id) {
    const t = this.tracks.get(id);
    this.tracks.delete(id);
    this.layerPrefs.delete(id);
    const p = t && this.participants.get(t.participant);
    if (p) p.tracks = p.tracks.filter((x) => x.id !== id);
    const r = s.remote.get(id);
    if (r) {
      s.remote.delete(id);
      this.emit('track-ended', { track: r.track, participant: r.participant, trackId: id });
    }
    this.emit('track-unpublished', { id, track: t });
  }

  /**
   * @private
   * @param {Session} s
   * @param {any} msg
   */
  onError(s, msg) {
    const request = msg.id ? this.requests.get(msg.id) : undefined;
    /** @type {ServerError} */
    const err = { code: String(msg.code ?? 'unknown'), message: String(msg.message ?? ''), id: msg.id, request };
    if (s.resuming) {
      // The resume was refused (not-found: the grace period passed): a new
      // join. An expected outcome, not an error to show.
      if (msg.id && msg.id === s.resumeId) this.abandonResume(s);
      return;
    }
    if (msg.id && msg.id === s.joinId && !s.joined) {
      // The join was refused: fatal for a first join, retried for a rejoin
      // unless nothing can change.
      this.emit('error', err);
      if (!this.everJoined || FATAL_JOIN_CODES.has(err.code)) {
        this.stopped = true;
        this.endSession(s);
        this.rejectJoin(err);
        this.setState('failed');
      } else {
        this.endSession(s);
        this.scheduleReconnect();
      }
      return;
    }
    if (msg.id && msg.id === s.pendingOffer) this.enqueue(s, () => this.offerRefused(s));
    const r = msg.id ? this.refreshes.get(msg.id) : undefined;
    if (r) {
      this.refreshes.delete(msg.id);
      r.reject(Object.assign(new Error(err.message), err));
      return; // the caller has it
    }
    this.emit('error', err);
  }

  /**
   * @private
   * @param {{code: string, message: string}} err
   */
  rejectJoin(err) {
    if (!this.joining) return;
    const e = Object.assign(new Error(err.message), err);
    this.joining.reject(e);
    this.joining = null;
  }

  // ---- media ----

  /**
   * @private
   * @param {Session} s
   * @param {RTCIceServer[]} iceServers
   */
  createPeerConnection(s, iceServers) {
    const pc = new RTCPeerConnection({
      ...this.options.rtcConfig,
      ...this.iceSettings(iceServers),
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    s.pc = pc;
    pc.onicecandidate = (ev) => {
      if (this.session !== s) return;
      if (ev.candidate && ev.candidate.candidate) {
        this.send({ type: 'candidate', candidate: ev.candidate.toJSON() }, s);
      } else if (!ev.candidate) {
        this.send({ type: 'candidate', candidate: null }, s);
      }
    };
    pc.onnegotiationneeded = () => {
      if (this.session === s) this.negotiate(s);
    };
    pc.onconnectionstatechange = () => {
      if (this.session === s) this.updateState(s);
    };
    pc.ontrack = (ev) => {
      if (this.session === s) this.onRemoteTrack(s, ev);
    };
  }

  /**
   * The ICE part of the peer connection's configuration: `rtcConfig`'s ICE
   * servers and the server's, filtered for the `relay` option.
   * @private
   * @param {RTCIceServer[]} fromServer
   * @returns {{iceServers: RTCIceServer[], iceTransportPolicy?: RTCIceTransportPolicy}}
   */
  iceSettings(fromServer) {
    return iceConfig([...(this.options.rtcConfig?.iceServers ?? []), ...fromServer], this.options.relay);
  }

  /**
   * Gives the live peer connection the ICE servers of a `resumed` message:
   * fresh TURN credentials for a long call, for the candidates gathered
   * from now on (an ICE restart's). A browser that refuses keeps the old ones.
   * @private
   * @param {Session} s
   * @param {RTCIceServer[]} fromServer
   */
  renewIceServers(s, fromServer) {
    if (!s.pc) return;
    try {
      s.pc.setConfiguration({ ...s.pc.getConfiguration(), iceServers: this.iceSettings(fromServer).iceServers });
    } catch {
      // the resume goes on with the servers the peer connection has
    }
  }

  /**
   * Puts a publication on a transceiver: a spare one of ours when it fits,
   * else a new one.
   * @private
   * @param {Session} s
   * @param {Publication} pub
   */
  attach(s, pub) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    const i = s.spare.findIndex((tr) => tr.receiver.track.kind === pub.kind
      && tr.currentDirection !== 'stopped' && spareSimulcast(tr) === pub.wantSimulcast);
    if (i >= 0) {
      const [tr] = s.spare.splice(i, 1);
      tr.sender.replaceTrack(pub.track).catch(() => {});
      tr.sender.setStreams?.(pub.stream);
      tr.direction = 'sendonly';
      pub.transceiver = tr;
      pub.simulcast = spareSimulcast(tr);
      if (pub.kind === 'video') preferCodecs(tr, this.joinOpts.videoCodecs);
      this.negotiate(s);
      return;
    }
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: 'sendonly', streams: [pub.stream] };
    let tr = null;
    if (pub.wantSimulcast) {
      try {
        tr = pc.addTransceiver(pub.track, { ...init, sendEncodings: SIMULCAST_ENCODINGS.map((e) => ({ ...e })) });
        pub.simulcast = true;
      } catch {
        tr = null; // no simulcast here: one encoding
      }
    }
    if (!tr) {
      tr = pc.addTransceiver(pub.track, init);
      pub.simulcast = false;
    }
    s.own.add(tr);
    pub.transceiver = tr;
    if (pub.kind === 'video') preferCodecs(tr, this.joinOpts.videoCodecs);
    this.negotiate(s);
  }

  /**
   * @private
   * @param {Session} s
   * @param {RTCTrackEvent} ev
   */
  onRemoteTrack(s, ev) {
    const tr = ev.transceiver;
    if (s.own.has(tr)) return;
    const msid = (tr.mid && s.msids.get(tr.mid)) || { stream: ev.streams[0]?.id ?? '', track: ev.track.id };
    const info = this.tracks.get(msid.track);
    if (!info) return; // unpublished meanwhile
    const prev = s.remote.get(msid.track);
    if (prev && prev.track === ev.track) return;
    s.remote.set(msid.track, { track: ev.track, transceiver: tr, participant: msid.stream });
    this.emit('track', { track: ev.track, participant: msid.stream, trackId: msid.track, info, transceiver: tr });
  }

  /**
   * Reports remote tracks whose transceiver no longer receives them.
   * @private
   * @param {Session} s
   */
  reconcileRemote(s) {
    for (const [trackId, r] of s.remote) {
      const dir = r.transceiver.currentDirection;
      const receiving = dir === 'recvonly' || dir === 'sendrecv';
      const msid = r.transceiver.mid ? s.msids.get(r.transceiver.mid) : undefined;
      if (!receiving || !msid || msid.track !== trackId) {
        s.remote.delete(trackId);
        this.emit('track-ended', { track: r.track, participant: r.participant, trackId });
      }
    }
  }

  // ---- negotiation ----

  /**
   * Runs f after every earlier change to the session's peer connection.
   * @private
   * @param {Session} s
   * @param {() => Promise<void>} f
   */
  enqueue(s, f) {
    s.queue = s.queue.then(async () => {
      if (s.closed) return;
      try {
        await f();
      } catch (err) {
        if (s.closed || this.session !== s) return;
        this.emit('error', { code: 'negotiation-failed', message: errorText(err) });
        // The session cannot be trusted any more: start a fresh one.
        this.endSession(s, 4000, 'negotiation failed');
        if (!this.stopped) this.scheduleReconnect();
      }
    });
  }

  /**
   * @private
   * @param {Session} s
   */
  negotiate(s) {
    this.enqueue(s, () => this.makeOffer(s));
  }

  /**
   * The directions our own transceivers want, as a string; and whether one
   * of them differs from what was last negotiated.
   * @private
   * @param {Session} s
   */
  ownState(s) {
    let sig = '';
    let differs = false;
    const all = /** @type {RTCPeerConnection} */ (s.pc).getTransceivers();
    for (const tr of s.own) {
      if (tr.currentDirection === 'stopped' || tr.direction === 'stopped') continue;
      sig += `${all.indexOf(tr)}:${tr.direction};`;
      if (tr.currentDirection !== tr.direction) differs = true;
    }
    return { sig, differs };
  }

  /**
   * Offers when our publications changed since the last negotiation, unless
   * an offer is in flight (it runs again when that one is settled).
   * @private
   * @param {Session} s
   */
  async makeOffer(s) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    if (!s.joined || s.resuming || s.pendingSdp !== null || pc.signalingState !== 'stable') return;
    const { sig, differs } = this.ownState(s);
    const restart = s.iceRestart;
    if (!restart && (!differs || sig === s.answeredSig)) return;
    const offer = await pc.createOffer();
    const id = this.send({ type: 'offer', sdp: offer.sdp }, s);
    if (!id) return;
    s.pendingOffer = id;
    s.pendingSdp = offer.sdp ?? '';
    s.offerSig = sig;
    s.offerRestart = restart;
  }

  /**
   * Applies a server offer. When ours is in flight the offers collided:
   * the server ignores ours, so it is dropped (it was never applied) and
   * made again after answering.
   * @private
   * @param {Session} s
   * @param {string} sdp
   */
  async applyOffer(s, sdp) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    s.pendingOffer = null;
    s.pendingSdp = null;
    s.msids = parseMsids(sdp);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription();
    this.send({ type: 'answer', sdp: pc.localDescription?.sdp }, s);
    this.reconcileRemote(s);
    this.negotiate(s); // a dropped or waiting change of ours
  }

  /**
   * Applies our offer and the server's answer to it.
   * @private
   * @param {Session} s
   * @param {{id?: string, sdp: string}} msg
   */
  async applyAnswer(s, msg) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    if (!s.pendingOffer || msg.id !== s.pendingOffer) return; // not for the offer in flight
    const offer = /** @type {string} */ (s.pendingSdp);
    s.pendingOffer = null;
    s.pendingSdp = null;
    await pc.setLocalDescription({ type: 'offer', sdp: offer });
    await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    s.answeredSig = s.offerSig;
    if (s.offerRestart) s.iceRestart = false;
    this.negotiate(s);
  }

  /**
   * Our offer was refused (bad-sdp, forbidden): the publications it was
   * adding are dropped, so that it is not made again.
   * @private
   * @param {Session} s
   */
  async offerRefused(s) {
    s.pendingOffer = null;
    s.pendingSdp = null;
    for (const pub of [...this.publications]) {
      const tr = pub.transceiver;
      if (tr && !tr.currentDirection) {
        this.publications.splice(this.publications.indexOf(pub), 1);
        pub.transceiver = null;
        s.own.delete(tr);
        tr.stop();
        this.emit('error', { code: 'media-failed', message: `${pub.source} could not be published` });
      }
    }
    s.answeredSig = this.ownState(s).sig;
  }

  /**
   * @private
   * @param {Session} s
   * @param {RTCIceCandidateInit|null} c
   */
  async addCandidate(s, c) {
    const pc = /** @type {RTCPeerConnection} */ (s.pc);
    if (!pc.remoteDescription) return;
    try {
      if (c && c.candidate) {
        await pc.addIceCandidate(c);
      } else {
        await pc.addIceCandidate();
      }
    } catch {
      // a candidate of a description since replaced: harmless
    }
  }

  // ---- state ----

  /**
   * @private
   * @param {Session} s
   */
  updateState(s) {
    if (this.session !== s || !s.pc || s.resuming) return;
    switch (s.pc.connectionState) {
      case 'connected':
        this.setState('connected');
        break;
      case 'disconnected':
        this.setState('disconnected');
        break;
      case 'failed':
        this.setState('disconnected'); // the server removes us and we reconnect
        break;
      case 'new':
        // Nothing to carry yet (no media either way) counts as connected.
        this.setState(s.pc.getTransceivers().length === 0 ? 'connected' : 'connecting');
        break;
      default:
        this.setState('connecting');
    }
  }

  /**
   * @private
   * @param {ConnectionState} state
   */
  setState(state) {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit('connectionstatechange', { state });
  }

  /**
   * @private
   * @param {string} type
   * @param {any} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Reads the `a=msid` of each m-section of a description.
 * @param {string} sdp
 * @returns {Map<string, {stream: string, track: string}>} by mid
 */
export function parseMsids(sdp) {
  const out = new Map();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    const msid = /^a=msid:(\S+) (\S+)/m.exec(section);
    if (mid && msid) out.set(mid, { stream: msid[1], track: msid[2] });
  }
  return out;
}

/**
 * The ICE part of a peer connection's configuration. Without `relay`,
 * `servers` as they are. With it, relay candidates only, and of `servers`
 * only the TURN URLs of that transport (servers left without a URL are
 * dropped).
 * @param {RTCIceServer[]} servers
 * @param {RelayTransport} [relay]
 * @returns {{iceServers: RTCIceServer[], iceTransportPolicy?: RTCIceTransportPolicy}}
 */
export function iceConfig(servers, relay) {
  if (!relay) return { iceServers: servers };
  /** @type {RTCIceServer[]} */
  const iceServers = [];
  for (const server of servers) {
    const urls = [server.urls].flat().filter((url) => turnTransport(url) === relay);
    if (urls.length > 0) iceServers.push({ ...server, urls });
  }
  return { iceServers, iceTransportPolicy: 'relay' };
}

/**
 * How a URL reaches its TURN server: `turns:` is TLS, `turn:` UDP unless
 * `?transport=tcp`. Null for anything else (STUN, an unknown transport).
 * @param {string} url
 * @returns {RelayTransport|null}
 */
function turnTransport(url) {
  const m = /^(turns?):[^?]*(?:\?(.*))?$/i.exec(String(url).trim());
  if (!m) return null;
  if (m[1].toLowerCase() === 'turns') return 'tls';
  const transport = new URLSearchParams((m[2] ?? '').toLowerCase()).get('transport') ?? 'udp';
  return transport === 'udp' || transport === 'tcp' ? transport : null;
}

/**
 * The path of the selected candidate pair of a stats report: the
 * transport's `selectedCandidatePairId` (Chromium), else the pair marked
 * `selected`, else a nominated pair that succeeded (Firefox).
 * @param {RTCStatsReport|Map<string, any>} stats
 * @returns {MediaPath|null}
 */
function selectedPath(stats) {
  /** @type {any[]} */
  const reports = [...stats.values()];
  const pairs = reports.filter((r) => r.type === 'candidate-pair');
  const chosen = reports.find((r) => r.type === 'transport' && r.selectedCandidatePairId)?.selectedCandidatePairId;
  const pair = (chosen && stats.get(chosen))
    ?? pairs.find((p) => p.selected === true)
    ?? pairs.find((p) => p.nominated && p.state === 'succeeded');
  const local = pair && stats.get(pair.localCandidateId);
  if (!local) return null;
  const remote = stats.get(pair.remoteCandidateId);
  /** @type {MediaPath['path']} */
  let path;
  if (local.candidateType === 'relay') {
    path = local.relayProtocol === 'tcp' ? 'relay-tcp' : local.relayProtocol === 'tls' ? 'relay-tls' : 'relay-udp';
  } else {
    path = local.protocol === 'tcp' ? 'tcp' : 'udp';
  }
  return { path, local: candidateText(local), remote: remote ? candidateText(remote) : '?' };
}

/**
 * A candidate's stats for display: `relay 10.0.0.1:5000 udp via tcp`.
 * @param {any} c a local-candidate or remote-candidate report
 * @returns {string}
 */
function candidateText(c) {
  const host = c.address ?? c.ip ?? '?';
  const addr = host.includes(':') ? `[${host}]` : host;
  const via = c.candidateType === 'relay' && c.relayProtocol ? ` via ${c.relayProtocol}` : '';
  return `${c.candidateType ?? '?'} ${addr}:${c.port ?? '?'} ${c.protocol ?? '?'}${via}`;
}

/**
 * @param {RTCRtpTransceiver} tr
 * @returns {boolean}
 */
function spareSimulcast(tr) {
  return (tr.sender.getParameters().encodings?.length ?? 0) > 1;
}

/**
 * Limits what a video transceiver sends to the MIME types in `only` (and
 * their retransmission format); nothing changes without `only`.
 * @param {RTCRtpTransceiver} tr
 * @param {string[]} [only]
 */
function preferCodecs(tr, only) {
  if (!only || typeof tr.setCodecPreferences !== 'function') return;
  const lower = only.map((m) => m.toLowerCase());
  const codecs = (RTCRtpReceiver.getCapabilities('video')?.codecs ?? [])
    .filter((c) => lower.includes(c.mimeType.toLowerCase()) || c.mimeType.toLowerCase() === 'video/rtx');
  try {
    tr.setCodecPreferences(codecs);
  } catch {
    // a codec this browser does not have: it sends what it has
  }
}

/**
 * What this browser decodes, for `join`: media codecs only, video limited
 * to `only` when given. Undefined where the browser cannot tell.
 * @param {string[]} [only] video MIME types
 * @returns {{mimeType: string, sdpFmtpLine?: string}[]|undefined}
 */
function decodableCodecs(only) {
  if (typeof RTCRtpReceiver === 'undefined' || typeof RTCRtpReceiver.getCapabilities !== 'function') return undefined;
  const lower = only?.map((m) => m.toLowerCase());
  /** @type {{mimeType: string, sdpFmtpLine?: string}[]} */
  const out = [];
  for (const kind of ['audio', 'video']) {
    for (const c of RTCRtpReceiver.getCapabilities(kind)?.codecs ?? []) {
      const mime = c.mimeType.toLowerCase();
      if (/\/(rtx|red|ulpfec|flexfec-03|cn|telephone-event)$/.test(mime)) continue;
      if (kind === 'video' && lower && !lower.includes(mime)) continue;
      out.push(c.sdpFmtpLine ? { mimeType: c.mimeType, sdpFmtpLine: c.sdpFmtpLine } : { mimeType: c.mimeType });
    }
  }
  return out;
}

/**
 * @param {any} t
 * @returns {TrackInfo}
 */
function normTrack(t) {
  return {
    id: String(t.id),
    participant: String(t.participant),
    kind: t.kind === 'audio' ? 'audio' : 'video',
    layers: Array.isArray(t.layers) ? t.layers : [],
    muted: !!t.muted,
    codec: String(t.codec ?? ''),
    ...(t.mid !== undefined ? { mid: t.mid } : {}),
  };
}

/**
 * @param {any} p
 * @returns {ParticipantInfo}
 */
function normParticipant(p) {
  return { id: String(p.id), name: String(p.name ?? ''), tracks: (p.tracks ?? []).map(normTrack) };
}

/**
 * @param {unknown} err
 * @returns {string}
 */
function errorText(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
