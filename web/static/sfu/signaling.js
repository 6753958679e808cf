// signaling.js: the life of a client's sessions, one after the other:
// joining, the messages of the current socket, what a socket closing means
// (resume the session, join afresh with backoff, or stop), and the
// connection state. The parts of a session (negotiation.js, resume.js,
// room.js) reach the client through the host object made here, each
// through the small interface it declares.

import { iceConfig } from './ice.js';
import { decodableCodecs } from './media.js';
import { Negotiation } from './negotiation.js';
import { FATAL_JOIN_CODES, FINAL_CLOSE_CODES, normParticipant } from './protocol.js';
import { Resume } from './resume.js';
import { Room } from './room.js';
import { Requests, Session } from './session.js';

/** @import { Publication } from './media.js' */
/** @import { NegotiationHost } from './negotiation.js' */
/** @import { ResumeHost } from './resume.js' */
/** @import { RoomHost } from './room.js' */
/** @import { ConnectionState, Emit, JoinOptions, Joined, Options, ParticipantInfo, ServerError } from './types.js' */

export class Signaling {
  /** @readonly @type {Room} The room of the current session. */
  room;
  /** @type {Options} the client's, read when used */
  #options;
  /** @type {Publication[]} the client's, changed in place */
  #publications;
  /** @type {Emit} */
  #emit;
  /** @type {ConnectionState} */
  #state = 'new';
  /** @type {string|null} The secret from `joined` that resumes this participant. */
  #resumeToken = null;
  /** @type {Session|null} */
  #session = null;
  /** Ids and types of requests, across sessions. */
  #requests = new Requests();
  /** @type {Map<string, {resolve: (v: {expires: number}) => void, reject: (e: Error) => void}>} refresh requests by id */
  #refreshes = new Map();
  /** Reconnections since the last join or resume. */
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout>|null} the next join */
  #retryTimer = null;
  #roomName = '';
  #name = '';
  /** @type {JoinOptions} */
  #joinOpts = {};
  /** @type {{resolve: (v: Joined) => void, reject: (e: Error) => void}|null} the promise of join() */
  #joining = null;
  #everJoined = false;
  /** Left or closed: nothing reconnects. */
  #stopped = false;
  /** @type {NegotiationHost & ResumeHost & RoomHost} what the session's parts need of the client */
  #host;

  /**
   * @param {Options} options
   * @param {Publication[]} publications
   * @param {Emit} emit dispatches an event of the client
   */
  constructor(options, publications, emit) {
    this.#options = options;
    this.#publications = publications;
    this.#emit = emit;
    this.#host = {
      emit,
      isCurrent: (s) => this.#session === s,
      stopped: () => this.#stopped,
      send: (msg) => this.send(msg),
      bind: (s, ws, onopen) => this.#bindSocket(s, ws, onopen),
      setState: (state) => this.#setState(state),
      updateState: (s) => this.#updateState(s),
      restart: (s, code, reason) => this.#restart(s, code, reason),
      endRemote: (id) => this.#session?.negotiation?.endRemote(id),
      track: (id) => this.room.tracks.get(id),
      resumeToken: () => this.#resumeToken,
      publications,
      options,
    };
    this.room = new Room(this.#host);
  }

  /** @returns {ConnectionState} */
  get state() {
    return this.#state;
  }

  /** @returns {string|null} */
  get resumeToken() {
    return this.#resumeToken;
  }

  /** @returns {Session|null} */
  get session() {
    return this.#session;
  }

  /** Whether join() may be called: a client joins once. */
  get canJoin() {
    return !this.#session && !this.#everJoined;
  }

  /**
   * Joins, when canJoin; then keeps the participant in the room (see
   * SFUClient).
   * @param {string} room
   * @param {string} name
   * @param {JoinOptions} opts
   * @returns {Promise<Joined>}
   */
  join(room, name, opts) {
    this.#roomName = room;
    this.#name = name;
    this.#joinOpts = opts;
    this.#stopped = false;
    return new Promise((resolve, reject) => {
      this.#joining = { resolve, reject };
      this.#connect();
    });
  }

  /**
   * Sends a request with a fresh id on a session, the current one by
   * default; returns the id, or null when it cannot be sent now.
   * @param {{type: string} & Record<string, unknown>} msg
   * @param {Session|null} [s]
   * @returns {string|null}
   */
  send(msg, s = this.#session) {
    return s ? s.send(msg) : null;
  }

  /**
   * Presents a fresh join token; a rejoin uses it too.
   * @param {string} token
   * @returns {Promise<{expires: number}>}
   */
  refresh(token) {
    const id = this.send({ type: 'refresh', token });
    if (!id) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      this.#refreshes.set(id, {
        resolve: (v) => {
          this.#joinOpts = { ...this.#joinOpts, token };
          resolve(v);
        },
        reject,
      });
    });
  }

  /**
   * Leaves (with a `leave`) or closes at once: nothing reconnects.
   * @param {boolean} polite whether to send `leave`
   */
  stop(polite) {
    const s = this.#session;
    this.#stopped = true;
    this.#clearRetry();
    if (polite) s?.leave();
    this.#endSession(s, 1000, polite ? 'left' : 'closed');
    this.#rejectJoin({ code: 'closed', message: polite ? 'left before joining' : 'closed before joining' });
    this.#setState('closed');
  }

  // ---- sessions ----

  /** Opens a new session and joins. */
  #connect() {
    let ws;
    try {
      ws = new WebSocket(this.#options.url);
    } catch (err) {
      this.#rejectJoin({ code: 'connection-failed', message: String(err) });
      this.#setState('failed');
      return;
    }
    const s = new Session(ws, this.#requests);
    this.#session = s;
    this.#setState(this.#everJoined ? 'reconnecting' : 'connecting');
    this.#bindSocket(s, ws, () => {
      const opts = this.#joinOpts;
      /** @type {{type: string} & Record<string, unknown>} */
      const msg = { type: 'join', room: this.#roomName, name: this.#name };
      if (opts.token) msg.token = opts.token;
      if (opts.autoSubscribe === false) msg.autoSubscribe = false;
      const codecs = decodableCodecs(opts.videoCodecs);
      if (codecs) msg.codecs = codecs;
      s.joinId = this.send(msg, s);
    });
  }

  /**
   * Makes ws the session's socket, its messages handled here.
   * @param {Session} s
   * @param {WebSocket} ws
   * @param {() => void} onopen sends the first message
   */
  #bindSocket(s, ws, onopen) {
    s.listen(ws, () => this.#session === s, {
      open: onopen,
      message: (msg) => this.#handle(s, msg),
      close: (ev) => this.#onSocketClosed(s, ev),
    });
  }

  /**
   * @param {Session} s
   * @param {CloseEvent} ev
   */
  #onSocketClosed(s, ev) {
    if (this.#session !== s) return;
    const final = FINAL_CLOSE_CODES.has(ev.code);
    if (!this.#stopped && !final && s.resume) {
      s.resume.retry();
      return;
    }
    if (!this.#stopped && !final && s.joined && this.#resumeToken
      && this.#options.reconnect && this.#options.resume) {
      Resume.start(s, this.#host);
      return;
    }
    this.#endSession(s);
    if (this.#stopped) return;
    if (!this.#everJoined) {
      const why = ev.reason || (ev.code === 1006 ? 'the server cannot be reached' : `code ${ev.code}`);
      this.#rejectJoin({ code: 'connection-failed', message: `connection closed: ${why}` });
      this.#setState('failed');
      return;
    }
    if (!this.#options.reconnect) {
      this.#setState('failed');
      return;
    }
    this.#scheduleReconnect();
  }

  /**
   * Ends a session and, unless the client was stopped, joins afresh.
   * @param {Session} s
   * @param {number} [code]
   * @param {string} [reason]
   */
  #restart(s, code, reason) {
    this.#endSession(s, code, reason);
    if (!this.#stopped) this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    const base = Math.min(this.#options.maxDelay, this.#options.minDelay * 2 ** this.#attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.#attempt++;
    this.#setState('reconnecting');
    this.#emit('reconnecting', { attempt: this.#attempt, delay, resume: false });
    this.#clearRetry();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#stopped) this.#connect();
    }, delay);
  }

  #clearRetry() {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /**
   * Ends a session: socket and peer connection closed, the room forgotten
   * (everyone is reported gone; a new `joined` brings them back).
   * @param {Session|null} s
   * @param {number} [code]
   * @param {string} [reason]
   */
  #endSession(s, code = 1000, reason = '') {
    if (!s || s.closed) return;
    s.closed = true;
    s.resume?.stop();
    if (this.#session === s) this.#session = null;
    s.closeSocket(code, reason);
    s.negotiation?.close();
    for (const pub of this.#publications) {
      pub.transceiver = null;
      pub.id = null;
    }
    this.room.clear();
    this.#resumeToken = null;
  }

  // ---- messages ----

  /**
   * @param {Session} s
   * @param {any} msg a message of the server, parsed
   */
  #handle(s, msg) {
    const room = this.room;
    const neg = s.negotiation;
    switch (msg.type) {
      case 'joined':
        this.#onJoined(s, msg);
        break;
      case 'resumed':
        this.#onResumed(s, msg);
        break;
      case 'offer':
        neg?.offer(msg.sdp);
        break;
      case 'answer':
        neg?.answer(msg);
        break;
      case 'candidate':
        neg?.candidate(msg.candidate);
        break;
      case 'participant-joined':
        room.participantJoined(normParticipant(msg.participant));
        break;
      case 'participant-left':
        room.participantLeft(msg.participant);
        break;
      case 'track-published':
        if (msg.track?.participant === room.self) {
          // Ours: its mid is known once the answer is applied, which is queued.
          neg?.enqueue(async () => room.trackPublished(msg.track));
        } else {
          room.trackPublished(msg.track);
        }
        break;
      case 'track-unpublished':
        room.trackUnpublished(msg.track);
        break;
      case 'track-updated':
        room.trackUpdated(msg.track);
        break;
      case 'track-unsupported':
        room.trackUnsupported(msg.track, msg.codec, msg.message);
        break;
      case 'track-muted':
        room.trackMuted(msg.track, !!msg.muted);
        break;
      case 'recording':
        this.#emit('recording', { recording: !!msg.recording });
        break;
      case 'speakers':
        this.#emit('speakers', { participants: Array.isArray(msg.participants) ? msg.participants : [] });
        break;
      case 'layers':
        neg?.layers(msg.track, Array.isArray(msg.active) ? msg.active : []);
        break;
      case 'token-expiring':
        this.#emit('token-expiring', { expires: Number(msg.expires) * 1000 });
        break;
      case 'refreshed': {
        const r = this.#refreshes.get(msg.id);
        this.#refreshes.delete(msg.id);
        r?.resolve({ expires: Number(msg.expires) * 1000 });
        break;
      }
      case 'error':
        this.#onError(s, msg);
        break;
      default:
        break; // newer servers may send more
    }
  }

  /**
   * @param {Session} s
   * @param {any} msg
   */
  #onJoined(s, msg) {
    s.joined = true;
    const rejoined = this.#everJoined;
    this.#everJoined = true;
    this.#attempt = 0;
    this.#resumeToken = typeof msg.resumeToken === 'string' && msg.resumeToken ? msg.resumeToken : null;
    /** @type {ParticipantInfo[]} */
    const participants = (msg.participants ?? []).map(normParticipant);
    this.room.joined(msg.participant.id, participants);
    const neg = new Negotiation(s, this.#host, {
      ...this.#options.rtcConfig,
      ...this.#iceSettings(msg.iceServers ?? []),
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    }, this.#joinOpts.videoCodecs);
    s.negotiation = neg;
    this.#setState('connecting');
    /** @type {Joined} */
    const detail = { participant: msg.participant, participants, rejoined };
    if (this.#joining) {
      this.#joining.resolve(detail);
      this.#joining = null;
    }
    this.#emit('joined', detail);
    this.#emit('recording', { recording: !!msg.recording });
    for (const pub of this.#publications) neg.attach(pub);
    this.#updateState(s);
  }

  /**
   * The server resumed the session: the room is brought up to date and
   * what could not be sent meanwhile is sent.
   * @param {Session} s
   * @param {any} msg
   */
  #onResumed(s, msg) {
    const resume = s.resume;
    if (!resume?.answers(msg.id)) return;
    const self = normParticipant(msg.participant ?? {});
    if (self.id !== this.room.self) {
      resume.abandon(); // not us: cannot happen with our own token
      return;
    }
    resume.stop();
    this.#attempt = 0;
    // Each token resumes once: the next resume needs the new one.
    if (typeof msg.resumeToken === 'string' && msg.resumeToken) this.#resumeToken = msg.resumeToken;
    if (Array.isArray(msg.iceServers)) s.negotiation?.setIceServers(this.#iceSettings(msg.iceServers).iceServers);
    this.#updateState(s);
    this.room.reconcile(self, (msg.participants ?? []).map(normParticipant));
    for (const pub of this.#publications) {
      const t = pub.id ? self.tracks.find((x) => x.id === pub.id) : undefined;
      if (t && t.muted !== pub.muted) this.send({ type: 'mute', track: t.id, muted: pub.muted }, s);
    }
    for (const id of resume.unsentLayers) {
      const rid = this.room.layerPrefs.get(id);
      if (rid && this.room.tracks.has(id)) this.send({ type: 'layer', track: id, rid }, s);
    }
    resume.unsentLayers.clear();
    this.#emit('resumed', { participant: { id: self.id, name: self.name }, participants: [...this.room.participants.values()] });
    this.#emit('recording', { recording: !!msg.recording });
    s.negotiation?.afterResume();
  }

  /**
   * @param {Session} s
   * @param {any} msg
   */
  #onError(s, msg) {
    const request = msg.id ? this.#requests.type(msg.id) : undefined;
    /** @type {ServerError} */
    const err = { code: String(msg.code ?? 'unknown'), message: String(msg.message ?? ''), id: msg.id, request };
    if (s.resume) {
      // The resume was refused (not-found: the grace period passed): a new
      // join. An expected outcome, not an error to show.
      if (msg.id && s.resume.answers(msg.id)) s.resume.abandon();
      return;
    }
    if (msg.id && msg.id === s.joinId && !s.joined) {
      // The join was refused: fatal for a first join, retried for a rejoin
      // unless nothing can change.
      this.#emit('error', err);
      if (!this.#everJoined || FATAL_JOIN_CODES.has(err.code)) {
        this.#stopped = true;
        this.#endSession(s);
        this.#rejectJoin(err);
        this.#setState('failed');
      } else {
        this.#endSession(s);
        this.#scheduleReconnect();
      }
      return;
    }
    if (msg.id) s.negotiation?.refused(msg.id);
    const r = msg.id ? this.#refreshes.get(msg.id) : undefined;
    if (r) {
      this.#refreshes.delete(msg.id);
      r.reject(Object.assign(new Error(err.message), err));
      return; // the caller has it
    }
    this.#emit('error', err);
  }

  /** @param {{code: string, message: string}} err */
  #rejectJoin(err) {
    if (!this.#joining) return;
    const e = Object.assign(new Error(err.message), err);
    this.#joining.reject(e);
    this.#joining = null;
  }

  /**
   * The ICE part of the peer connection's configuration: `rtcConfig`'s ICE
   * servers and the server's, filtered for the `relay` option.
   * @param {RTCIceServer[]} fromServer
   * @returns {{iceServers: RTCIceServer[], iceTransportPolicy?: RTCIceTransportPolicy}}
   */
  #iceSettings(fromServer) {
    return iceConfig([...(this.#options.rtcConfig?.iceServers ?? []), ...fromServer], this.#options.relay);
  }

  // ---- state ----

  /** @param {Session} s */
  #updateState(s) {
    const pc = s.pc;
    if (this.#session !== s || !pc || s.resuming) return;
    switch (pc.connectionState) {
      case 'connected':
        this.#setState('connected');
        break;
      case 'disconnected':
        this.#setState('disconnected');
        break;
      case 'failed':
        this.#setState('disconnected'); // the server removes us and we reconnect
        break;
      case 'new':
        // Nothing to carry yet (no media either way) counts as connected.
        this.#setState(pc.getTransceivers().length === 0 ? 'connected' : 'connecting');
        break;
      default:
        this.#setState('connecting');
    }
  }

  /** @param {ConnectionState} state */
  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('connectionstatechange', { state });
  }
}
