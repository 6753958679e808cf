// room.js: the room as this client knows it: the other participants and
// every published track, kept from the server's events (and, after a
// resume, from its snapshot of the room), with an event of the client for
// every change.

import { normTrack } from './protocol.js';

/** @import { Publication } from './media.js' */
/** @import { Emit, ParticipantInfo, TrackInfo } from './types.js' */

/**
 * @typedef {object} RoomHost What the room needs of its client.
 * @property {Emit} emit
 * @property {(msg: Record<string, unknown> & {type: string}) => string|null} send
 *   Sends a request on the current session.
 * @property {(trackId: string) => void} endRemote Ends the remote track of
 *   that id, if the current session receives it.
 * @property {Publication[]} publications The client's.
 */

export class Room {
  /** @type {Map<string, ParticipantInfo>} The other participants, by id. */
  participants = new Map();
  /** @type {Map<string, TrackInfo>} Every published track of the room, ours included. */
  tracks = new Map();
  /** @type {Map<string, string>} The simulcast layer last asked per track. */
  layerPrefs = new Map();
  /** @type {string|null} Our participant id in the current session. */
  self = null;
  /** @type {RoomHost} */
  #host;

  /** @param {RoomHost} host */
  constructor(host) {
    this.#host = host;
  }

  /**
   * The room a `joined` describes, replacing what was known.
   * @param {string} self our participant id
   * @param {ParticipantInfo[]} participants the others
   */
  joined(self, participants) {
    this.self = self;
    this.participants.clear();
    this.tracks.clear();
    for (const p of participants) {
      this.participants.set(p.id, p);
      for (const t of p.tracks) this.tracks.set(t.id, t);
    }
  }

  /**
   * The session ended: the room is forgotten, everyone reported gone (a new
   * `joined` brings them back).
   */
  clear() {
    for (const [id, p] of [...this.participants]) {
      this.participants.delete(id);
      this.#host.emit('participant-left', { id, participant: p });
    }
    this.tracks.clear();
    this.layerPrefs.clear();
    this.self = null;
  }

  /** @param {ParticipantInfo} p */
  participantJoined(p) {
    this.participants.set(p.id, p);
    for (const t of p.tracks) this.tracks.set(t.id, t);
    this.#host.emit('participant-joined', p);
  }

  /** @param {string} id */
  participantLeft(id) {
    const p = this.participants.get(id);
    this.participants.delete(id);
    if (p) for (const t of p.tracks) this.tracks.delete(t.id);
    this.#host.emit('participant-left', { id, participant: p });
  }

  /**
   * A track published, ours (matched to its publication by mid) or
   * another participant's.
   * @param {any} raw the track as the server sent it
   */
  trackPublished(raw) {
    const t = normTrack(raw);
    this.tracks.set(t.id, t);
    const local = t.participant === this.self;
    let publication;
    if (local) {
      publication = this.#host.publications.find((p) => p.transceiver && p.transceiver.mid === raw.mid);
      if (publication) {
        publication.id = t.id;
        if (publication.muted) this.#host.send({ type: 'mute', track: t.id, muted: true });
      }
    } else {
      const p = this.participants.get(t.participant);
      if (p && !p.tracks.some((x) => x.id === t.id)) p.tracks.push(t);
    }
    this.#host.emit('track-published', { track: t, local, publication });
  }

  /** @param {string} id */
  trackUnpublished(id) {
    const t = this.tracks.get(id);
    this.tracks.delete(id);
    this.layerPrefs.delete(id);
    const p = t && this.participants.get(t.participant);
    if (p) p.tracks = p.tracks.filter((x) => x.id !== id);
    this.#host.endRemote(id);
    this.#host.emit('track-unpublished', { id, track: t });
  }

  /**
   * Its publisher switched codec.
   * @param {any} raw the track as the server sent it
   */
  trackUpdated(raw) {
    const t = this.tracks.get(raw?.id);
    if (t) {
      t.codec = String(raw.codec ?? '');
      delete t.unsupported; // the server says again if it still is
    }
    this.#host.emit('track-updated', { id: raw?.id, track: t });
  }

  /**
   * The server cannot send us this track: we do not decode its codec.
   * @param {string} id
   * @param {unknown} codec
   * @param {unknown} message
   */
  trackUnsupported(id, codec, message) {
    const t = this.tracks.get(id);
    if (t) t.unsupported = String(message ?? `this client does not decode ${codec}`);
    this.#host.emit('track-unsupported', { id, codec, track: t });
  }

  /**
   * @param {string} id
   * @param {boolean} muted
   */
  trackMuted(id, muted) {
    const t = this.tracks.get(id);
    if (t) t.muted = muted;
    this.#host.emit('track-muted', { id, muted, track: t });
  }

  /**
   * Brings the room up to date with the server's snapshot after a resume,
   * emitting events for the differences only.
   * @param {ParticipantInfo} self
   * @param {ParticipantInfo[]} others
   */
  reconcile(self, others) {
    const now = new Map(others.map((p) => [p.id, p]));
    for (const [id, p] of [...this.participants]) {
      if (now.has(id)) continue;
      for (const t of [...p.tracks]) this.trackUnpublished(t.id);
      this.participants.delete(id);
      this.#host.emit('participant-left', { id, participant: p });
    }
    for (const np of others) {
      const p = this.participants.get(np.id);
      if (!p) {
        this.participants.set(np.id, np);
        for (const t of np.tracks) this.tracks.set(t.id, t);
        this.#host.emit('participant-joined', np);
        continue;
      }
      this.#reconcileTracks(p.tracks, np.tracks);
      p.tracks = np.tracks.map((t) => this.tracks.get(t.id) ?? t);
    }
    // Our own tracks: one the server took just before the socket broke may
    // not have been announced to us.
    const mine = [...this.tracks.values()].filter((t) => t.participant === self.id);
    this.#reconcileTracks(mine, self.tracks);
  }

  /**
   * @param {TrackInfo[]} had
   * @param {TrackInfo[]} has
   */
  #reconcileTracks(had, has) {
    const pubs = this.#host.publications;
    const ids = new Set(has.map((t) => t.id));
    for (const t of had) {
      if (ids.has(t.id)) continue;
      const pub = pubs.find((x) => x.id === t.id);
      if (pub) pub.id = null;
      this.trackUnpublished(t.id);
    }
    for (const t of has) {
      const known = this.tracks.get(t.id);
      if (!known) {
        if (t.participant === this.self) {
          const pub = pubs.find((x) => !x.id && x.kind === t.kind && x.transceiver);
          if (pub) pub.id = t.id;
          this.tracks.set(t.id, t);
          this.#host.emit('track-published', { track: t, local: true, publication: pub });
        } else {
          this.trackPublished(t);
        }
      } else if (known.muted !== t.muted && t.participant !== this.self) {
        known.muted = t.muted;
        this.#host.emit('track-muted', { id: t.id, muted: t.muted, track: known });
      }
    }
  }
}
