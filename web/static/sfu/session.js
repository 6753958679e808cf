// session.js: one connection to the server: its socket (the first one,
// then each socket that resumes it) and the write path, and from `joined`
// on the negotiation of its peer connection. A session is replaced on
// every new join; callbacks of an old session are ignored.

/** @import { Negotiation } from './negotiation.js' */
/** @import { Resume } from './resume.js' */

/**
 * Request ids, unique across a client's sessions, and the type of each
 * recent request, to name it in an error reply.
 */
export class Requests {
  #next = 1;
  /** @type {Map<string, string>} request id -> request type, the last 256 */
  #types = new Map();

  /**
   * @param {string} type
   * @returns {string} a fresh id for a request of that type
   */
  add(type) {
    const id = String(this.#next++);
    this.#types.set(id, type);
    for (const oldest of this.#types.keys()) {
      if (this.#types.size <= 256) break;
      this.#types.delete(oldest);
    }
    return id;
  }

  /**
   * @param {string} id
   * @returns {string|undefined} the type of the request of that id
   */
  type(id) {
    return this.#types.get(id);
  }
}

/**
 * @typedef {object} SocketHandlers What a session's current socket reports.
 * @property {() => void} open
 * @property {(msg: any) => void} message a frame, parsed (frames that are not JSON are dropped)
 * @property {(ev: CloseEvent) => void} close
 */

export class Session {
  /** @type {WebSocket} The socket in use; only its events are listened to. */
  ws;
  /** Whether `joined` came. */
  joined = false;
  /** Ended: its socket and peer connection are closed. */
  closed = false;
  /** @type {string|null} id of the join request */
  joinId = null;
  /** @type {Negotiation|null} The peer connection's side, from `joined` on. */
  negotiation = null;
  /** @type {Resume|null} Set while the socket is broken and new ones try to resume the session. */
  resume = null;
  /** @type {Requests} */
  #requests;

  /**
   * @param {WebSocket} ws
   * @param {Requests} requests the client's, shared by its sessions
   */
  constructor(ws, requests) {
    this.ws = ws;
    this.#requests = requests;
  }

  /** @returns {RTCPeerConnection|null} */
  get pc() {
    return this.negotiation?.pc ?? null;
  }

  /** The socket broke: the peer connection is kept while new sockets try to resume. */
  get resuming() {
    return this.resume !== null;
  }

  /**
   * Sends a request with a fresh id; returns the id, or null when the socket
   * is not open, before `joined` (except `join`), and while resuming (except
   * `resume`): what was not sent is sent once resumed.
   * @param {Record<string, unknown> & {type: string}} msg
   * @returns {string|null}
   */
  send(msg) {
    if (this.ws.readyState !== WebSocket.OPEN) return null;
    if (msg.type !== 'join' && !this.joined) return null;
    if (this.resuming && msg.type !== 'resume') return null; // sent once resumed
    const id = this.#requests.add(msg.type);
    this.ws.send(JSON.stringify({ ...msg, id }));
    return id;
  }

  /** Sends `leave`, which nothing answers, when joined and the socket is open. */
  leave() {
    if (this.ws.readyState === WebSocket.OPEN && this.joined) {
      this.ws.send(JSON.stringify({ type: 'leave' }));
    }
  }

  /**
   * Makes ws the session's socket. Its events are reported while it is the
   * socket of the client's current session: a socket it replaced is ignored.
   * @param {WebSocket} ws
   * @param {() => boolean} isCurrent whether this session is the client's
   * @param {SocketHandlers} on
   */
  listen(ws, isCurrent, on) {
    this.ws = ws;
    const current = () => isCurrent() && this.ws === ws;
    ws.onopen = () => {
      if (current()) on.open();
    };
    ws.onmessage = (ev) => {
      if (!current()) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      on.message(msg);
    };
    ws.onclose = (ev) => {
      if (current()) on.close(ev);
    };
  }

  /**
   * Closes the socket.
   * @param {number} code
   * @param {string} reason
   */
  closeSocket(code, reason) {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(code, reason);
    } else if (ws.readyState === WebSocket.CONNECTING) {
      // Closing a socket still connecting makes the browser log an error.
      ws.onopen = () => ws.close(code, reason);
    }
  }
}
