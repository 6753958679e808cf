// client.js: SFUClient, the client's public API and its events. The work
// is done by the modules beside it: signaling.js (the sessions, one after
// the other: joining, messages, reconnection), session.js (a session's
// socket), negotiation.js (its peer connection), resume.js (a broken
// socket), room.js (the room as the client knows it), stats.js (the media
// path).

import { RELAY_TRANSPORTS } from './ice.js';
import { Publication } from './media.js';
import { Signaling } from './signaling.js';
import { mediaPathOf } from './stats.js';

/** @import { Session } from './session.js' */
/**
 * @import { ClientOptions, ConnectionState, JoinOptions, Joined, MediaPath, Options,
 *   ParticipantInfo, ServerError, TrackInfo } from './types.js'
 */

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
 * - `track-updated` `{id, track: TrackInfo|undefined}`: its publisher switched codec
 * - `track-unsupported` `{id, codec, track: TrackInfo|undefined}`: this client
 *   cannot be sent the track (`track.unsupported` says why)
 * - `speakers` `{participants: string[]}` loudest first
 * - `recording` `{recording: boolean}`: whether the room is being recorded,
 *   after `joined` and `resumed` and whenever it changes
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
  /**
   * The options in force, defaults filled in. Read when used: a change
   * (say, of `resumeTimeout`) applies from the next use on.
   * @type {Options}
   */
  options;
  /** @readonly @type {Publication[]} Our publications. */
  publications = [];
  /** @type {string} The room joined. */
  room = '';
  /** @type {string} Our name, as given to join(). */
  name = '';
  /** @type {Signaling} */
  #sig;

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
    this.#sig = new Signaling(this.options, this.publications, (type, detail) => {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    });
  }

  /** @returns {string|null} Our participant id in the current session. */
  get participantId() {
    return this.#sig.room.self;
  }

  /** @returns {Map<string, ParticipantInfo>} The other participants, by id. */
  get participants() {
    return this.#sig.room.participants;
  }

  /** @returns {Map<string, TrackInfo>} Every published track of the room, ours included. */
  get tracks() {
    return this.#sig.room.tracks;
  }

  /** @returns {Map<string, string>} The simulcast layer last asked per track, by {@link setLayer}. */
  get layerPrefs() {
    return this.#sig.room.layerPrefs;
  }

  /** @returns {ConnectionState} */
  get connectionState() {
    return this.#sig.state;
  }

  /** @returns {string|null} The secret from `joined` that resumes this participant. */
  get resumeToken() {
    return this.#sig.resumeToken;
  }

  /** @returns {Session|null} The current session (for debugging: its socket is `session.ws`). */
  get session() {
    return this.#sig.session;
  }

  /** @returns {RTCPeerConnection|null} The peer connection of the current session. */
  get pc() {
    return this.#sig.session?.pc ?? null;
  }

  /**
   * Joins a room. Resolves with the `joined` payload; rejects with a
   * {@link ServerError} when the server refuses or the socket cannot open.
   * After a successful join, a broken socket is resumed, or the room joined
   * again (same room and name) with every publication republished: see
   * {@link SFUClient}.
   * @param {string} room
   * @param {string} name
   * @param {JoinOptions} [opts]
   *   videoCodecs restricts the video codecs this client sends and says it
   *   decodes to these MIME types (e.g. `['video/H264']`).
   * @returns {Promise<Joined>}
   */
  join(room, name, opts = {}) {
    if (!this.#sig.canJoin) {
      return Promise.reject(new Error('already joined: create a new client'));
    }
    this.room = room;
    this.name = name;
    return this.#sig.join(room, name, opts);
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
    this.#sig.session?.negotiation?.attach(pub);
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
    const tr = pub.transceiver;
    pub.transceiver = null;
    pub.id = null;
    if (tr) this.#sig.session?.negotiation?.detach(tr);
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
    if (pub.id) this.#sig.send({ type: 'mute', track: pub.id, muted });
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
    return this.#sig.refresh(token);
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
    return this.#sig.send({ type: 'subscribe', tracks: trackIds });
  }

  /**
   * Ends subscriptions.
   * @param {string[]} trackIds
   * @returns {string|null} the request id, or null when not connected
   */
  unsubscribe(trackIds) {
    return this.#sig.send({ type: 'unsubscribe', tracks: trackIds });
  }

  /**
   * Asks for at most this simulcast layer of a subscribed track.
   * @param {string} trackId
   * @param {'q'|'h'|'f'} rid
   * @returns {string|null} the request id, or null when not connected
   */
  setLayer(trackId, rid) {
    this.#sig.room.layerPrefs.set(trackId, rid);
    const s = this.#sig.session;
    const id = this.#sig.send({ type: 'layer', track: trackId, rid });
    if (!id) s?.resume?.unsentLayers.add(trackId);
    return id;
  }

  /**
   * The simulcast layer last asked for a track with {@link setLayer} in this
   * session, if any.
   * @param {string} trackId
   * @returns {string|undefined}
   */
  layer(trackId) {
    return this.#sig.room.layerPrefs.get(trackId);
  }

  /**
   * Restarts ICE: the next offer carries new ICE credentials, and the
   * server's answer reconnects the media on whatever network is there now.
   * The client does it by itself after resuming a session whose ICE was
   * `disconnected` or `failed`.
   */
  restartIce() {
    const s = this.#sig.session;
    if (!s?.negotiation || s.closed) return;
    s.negotiation.restartIce();
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
    return mediaPathOf(this.pc);
  }

  /**
   * Leaves the room: the server removes us and closes the socket. The
   * client cannot be joined again; local tracks are left to the caller.
   */
  leave() {
    this.#sig.stop(true);
  }

  /** Closes the connection at once, without a `leave` (the server notices the socket closing). */
  close() {
    this.#sig.stop(false);
  }
}
