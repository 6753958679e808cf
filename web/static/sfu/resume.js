// resume.js: keeping a session whose socket broke (docs/protocol.md,
// "Resuming"). The peer connection and its media keep running while new
// sockets, with backoff, send `resume` with the token from `joined`, for
// up to the client's `resumeTimeout`. The client handles the reply,
// `resumed`; when the server no longer knows the participant, or no socket
// gets through in time, the session is ended and the room joined afresh.

/** @import { Session } from './session.js' */
/** @import { ConnectionState, Emit, Options } from './types.js' */

/** A resume socket not open after this long (ms) is given up for a new one. */
const RESUME_OPEN_TIMEOUT = 4000;

/**
 * @typedef {object} ResumeHost What resuming needs of its client.
 * @property {(s: Session) => boolean} isCurrent Whether s is the client's session.
 * @property {() => boolean} stopped Whether the client was left or closed.
 * @property {Emit} emit
 * @property {(state: ConnectionState) => void} setState
 * @property {(s: Session, ws: WebSocket, onopen: () => void) => void} bind
 *   Makes ws the socket of s, its messages handled by the client.
 * @property {(s: Session, code?: number, reason?: string) => void} restart
 *   Ends s and, unless the client was stopped, joins afresh.
 * @property {() => string|null} resumeToken
 * @property {Readonly<Options>} options Read when used: they may change.
 */

/** The resuming of one session, from its socket breaking until it is resumed or given up. */
export class Resume {
  /** @type {Session} */
  #s;
  /** @type {ResumeHost} */
  #host;
  /** Resume sockets opened since the socket broke. */
  #attempt = 0;
  /** @type {string|null} id of the resume request on the current socket */
  #id = null;
  /** @type {ReturnType<typeof setTimeout>|null} gives up resuming */
  #deadline = null;
  /** @type {ReturnType<typeof setTimeout>|null} gives up a resume socket that does not open */
  #openTimer = null;
  /** @type {ReturnType<typeof setTimeout>|null} opens the next resume socket */
  #retryTimer = null;
  /** @type {Set<string>} tracks whose `layer` request could not be sent meanwhile */
  unsentLayers = new Set();

  /**
   * @param {Session} s
   * @param {ResumeHost} host
   */
  constructor(s, host) {
    this.#s = s;
    this.#host = host;
  }

  /**
   * The socket of s broke: the session is kept, and a new socket resumes it.
   * @param {Session} s
   * @param {ResumeHost} host
   */
  static start(s, host) {
    const r = new Resume(s, host);
    s.resume = r;
    s.negotiation?.answerLost();
    r.#deadline = setTimeout(() => {
      r.#deadline = null;
      if (host.isCurrent(s) && s.resume === r) r.abandon();
    }, host.options.resumeTimeout);
    host.setState('reconnecting');
    host.emit('reconnecting', { attempt: 1, delay: 0, resume: true });
    r.#open();
  }

  /**
   * Whether a `resumed` or `error` of this id answers our resume request.
   * @param {string|undefined} id
   */
  answers(id) {
    return id === this.#id;
  }

  /**
   * The resume socket closed or did not open: another one after a while,
   * until resumeTimeout has passed since the socket broke.
   */
  retry() {
    this.#clearOpenTimer();
    const base = Math.min(2000, 250 * 2 ** (this.#attempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    if (this.#deadline === null) {
      this.abandon();
      return;
    }
    this.#host.emit('reconnecting', { attempt: this.#attempt + 1, delay, resume: true });
    this.#clearRetry();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#host.stopped() && this.#host.isCurrent(this.#s) && this.#s.resume === this) this.#open();
    }, delay);
  }

  /**
   * Resuming failed (the server no longer knows us, or no socket got
   * through in time): the session ends and the room is joined afresh.
   */
  abandon() {
    this.stop();
    this.#host.restart(this.#s);
  }

  /** Resuming is over, one way or the other: its timers are stopped. */
  stop() {
    if (this.#s.resume === this) this.#s.resume = null;
    this.#id = null;
    this.#clearOpenTimer();
    if (this.#deadline !== null) clearTimeout(this.#deadline);
    this.#deadline = null;
    this.#clearRetry();
  }

  #open() {
    const s = this.#s;
    this.#attempt++;
    this.#id = null;
    let ws;
    try {
      ws = new WebSocket(this.#host.options.url);
    } catch {
      this.abandon();
      return;
    }
    this.#host.bind(s, ws, () => {
      this.#clearOpenTimer();
      this.#id = s.send({ type: 'resume', token: this.#host.resumeToken() });
    });
    this.#openTimer = setTimeout(() => {
      this.#openTimer = null;
      if (!this.#host.isCurrent(s) || s.ws !== ws || ws.readyState !== WebSocket.CONNECTING) return;
      // Given up (closed if it opens after all: closing a socket still
      // connecting makes the browser log an error).
      ws.onmessage = null;
      ws.onclose = null;
      ws.onopen = () => ws.close(1000, 'given up');
      this.retry();
    }, RESUME_OPEN_TIMEOUT);
  }

  #clearOpenTimer() {
    if (this.#openTimer !== null) clearTimeout(this.#openTimer);
    this.#openTimer = null;
  }

  #clearRetry() {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }
}
