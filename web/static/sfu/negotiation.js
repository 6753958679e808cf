// negotiation.js: one session's peer connection and its negotiation with
// the server. The client is the polite peer of perfect negotiation.
//
// Collisions are resolved without rollback: an offer is created, sent, and
// applied only once its answer arrives. When the server's offer comes
// instead (the server ignores ours), ours is simply dropped, the server's
// answered, and a new offer made. The protocol allows this, and it avoids
// rollback, which in Chromium breaks every later negotiation once a
// simulcast sender exists ("Failed to set local offer sdp") and can stall
// ICE gathering when it undoes the very first offer.
//
// Every change to the peer connection runs in one queue, in order. The
// transceivers of our publications are ours; the others carry what the
// server sends, reported as remote tracks.

import { SIMULCAST_ENCODINGS, preferCodecs, spareSimulcast } from './media.js';
import { errorText, parseMsids } from './protocol.js';

/** @import { Publication } from './media.js' */
/** @import { Session } from './session.js' */
/** @import { Emit, Msid, TrackInfo } from './types.js' */

/**
 * @typedef {object} NegotiationHost What a negotiation needs of its client.
 * @property {(s: Session) => boolean} isCurrent Whether s is the client's session.
 * @property {Emit} emit
 * @property {(s: Session) => void} updateState Derives the client's state from s's peer connection.
 * @property {(s: Session, code?: number, reason?: string) => void} restart
 *   Ends s and, unless the client was stopped, joins afresh.
 * @property {(trackId: string) => TrackInfo|undefined} track A track of the room.
 * @property {Publication[]} publications The client's, changed in place.
 */

/**
 * @typedef {object} RemoteTrack A track the server sends us.
 * @property {MediaStreamTrack} track
 * @property {RTCRtpTransceiver} transceiver
 * @property {string} participant Its publisher.
 */

export class Negotiation {
  /** @readonly @type {RTCPeerConnection} */
  pc;
  /** @type {Session} */
  #s;
  /** @type {NegotiationHost} */
  #host;
  /** @type {string[]|undefined} the only video codecs to send (join's `videoCodecs`) */
  #videoCodecs;
  /** @type {string|null} id of our offer awaiting an answer */
  #pendingOffer = null;
  /** @type {string|null} that offer, applied only when its answer comes */
  #pendingSdp = null;
  /** Signature of the directions of the offer in flight. */
  #offerSig = '';
  /** Signature of the directions the last answered offer carried. */
  #answeredSig = '';
  /** @type {Promise<void>} serializes every change to pc */
  #queue = Promise.resolve();
  /** @type {Set<RTCRtpTransceiver>} transceivers we publish on */
  #own = new Set();
  /** @type {RTCRtpTransceiver[]} own transceivers left inactive, for reuse */
  #spare = [];
  /** @type {Map<string, Msid>} mid -> a=msid of the server's last offer */
  #msids = new Map();
  /** @type {Map<string, RemoteTrack>} by server track id */
  #remote = new Map();
  /** An ICE restart was asked for: offers carry new credentials until one is answered. */
  #iceRestart = false;
  /** Whether the offer in flight was made after the ICE restart was asked for. */
  #offerRestart = false;

  /**
   * Creates the session's peer connection.
   * @param {Session} s
   * @param {NegotiationHost} host
   * @param {RTCConfiguration} config
   * @param {string[]} [videoCodecs]
   */
  constructor(s, host, config, videoCodecs) {
    this.#s = s;
    this.#host = host;
    this.#videoCodecs = videoCodecs;
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    pc.onicecandidate = (ev) => {
      if (!host.isCurrent(s)) return;
      if (ev.candidate && ev.candidate.candidate) {
        s.send({ type: 'candidate', candidate: ev.candidate.toJSON() });
      } else if (!ev.candidate) {
        s.send({ type: 'candidate', candidate: null });
      }
    };
    pc.onnegotiationneeded = () => {
      if (host.isCurrent(s)) this.negotiate();
    };
    pc.onconnectionstatechange = () => {
      if (host.isCurrent(s)) host.updateState(s);
    };
    pc.ontrack = (ev) => {
      if (host.isCurrent(s)) this.#onRemoteTrack(ev);
    };
  }

  /**
   * Runs f after every earlier change to the peer connection.
   * @param {() => Promise<void>} f
   */
  enqueue(f) {
    const s = this.#s;
    this.#queue = this.#queue.then(async () => {
      if (s.closed) return;
      try {
        await f();
      } catch (err) {
        if (s.closed || !this.#host.isCurrent(s)) return;
        this.#host.emit('error', { code: 'negotiation-failed', message: errorText(err) });
        // The session cannot be trusted any more: start a fresh one.
        this.#host.restart(s, 4000, 'negotiation failed');
      }
    });
  }

  /** Offers, in the queue, if our publications changed. */
  negotiate() {
    this.enqueue(() => this.#makeOffer());
  }

  /**
   * A server offer, applied in the queue.
   * @param {string} sdp
   */
  offer(sdp) {
    this.enqueue(() => this.#applyOffer(sdp));
  }

  /**
   * A server answer, applied in the queue with our offer it answers.
   * @param {{id?: string, sdp: string}} msg
   */
  answer(msg) {
    this.enqueue(() => this.#applyAnswer(msg));
  }

  /**
   * A server candidate, added in the queue.
   * @param {RTCIceCandidateInit|null} c
   */
  candidate(c) {
    this.enqueue(() => this.#addCandidate(c));
  }

  /**
   * An error answered the request of this id: when it is our offer in
   * flight, the offer was refused.
   * @param {string} id
   */
  refused(id) {
    if (id === this.#pendingOffer) this.enqueue(() => this.#offerRefused());
  }

  /**
   * The socket broke: the answer to an offer in flight went with it. The
   * server may have applied the offer: the same one (same mids) is sent
   * again once resumed, so it is kept.
   */
  answerLost() {
    this.#pendingOffer = null;
  }

  /**
   * Restarts ICE: the next offer carries new ICE credentials.
   */
  restartIce() {
    this.#iceRestart = true;
    this.pc.restartIce();
    this.negotiate();
  }

  /**
   * Gives the live peer connection new ICE servers, for the candidates
   * gathered from now on (an ICE restart's). A browser that refuses keeps
   * the old ones.
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch {
      // the resume goes on with the servers the peer connection has
    }
  }

  /**
   * Puts a publication on a transceiver: a spare one of ours when it fits,
   * else a new one.
   * @param {Publication} pub
   */
  attach(pub) {
    const spare = this.#spare.find((tr) => tr.receiver.track.kind === pub.kind
      && tr.currentDirection !== 'stopped' && spareSimulcast(tr) === pub.wantSimulcast);
    if (spare) {
      this.#spare.splice(this.#spare.indexOf(spare), 1);
      spare.sender.replaceTrack(pub.track).catch(() => {});
      spare.sender.setStreams?.(pub.stream);
      spare.direction = 'sendonly';
      pub.transceiver = spare;
      pub.simulcast = spareSimulcast(spare);
      if (pub.kind === 'video') preferCodecs(spare, this.#videoCodecs);
      this.negotiate();
      return;
    }
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: 'sendonly', streams: [pub.stream] };
    let tr = null;
    if (pub.wantSimulcast) {
      try {
        tr = this.pc.addTransceiver(pub.track, { ...init, sendEncodings: SIMULCAST_ENCODINGS.map((e) => ({ ...e })) });
        pub.simulcast = true;
      } catch {
        tr = null; // no simulcast here: one encoding
      }
    }
    if (!tr) {
      tr = this.pc.addTransceiver(pub.track, init);
      pub.simulcast = false;
    }
    this.#own.add(tr);
    pub.transceiver = tr;
    if (pub.kind === 'video') preferCodecs(tr, this.#videoCodecs);
    this.negotiate();
  }

  /**
   * Stops sending on one of our transceivers: it turns inactive, is kept
   * for reuse, and the change negotiated.
   * @param {RTCRtpTransceiver} tr
   */
  detach(tr) {
    if (!this.#own.has(tr) || tr.currentDirection === 'stopped') return;
    tr.direction = 'inactive';
    tr.sender.replaceTrack(null).catch(() => {});
    this.#spare.push(tr);
    this.negotiate();
  }

  /**
   * The server says which simulcast layers of one of our tracks somebody
   * needs: in the queue, the others stop being encoded (and sent) until
   * needed again.
   * @param {string} trackId
   * @param {string[]} active
   */
  layers(trackId, active) {
    this.enqueue(async () => {
      const pub = this.#host.publications.find((p) => p.id === trackId);
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
      this.#host.emit('layers', { id: trackId, active });
    });
  }

  /**
   * The peer connection's side of a resume, in the queue: the offer whose
   * answer was lost is sent again, simulcast layers switched off are
   * switched on (a `layers` sent while away was lost), and ICE is restarted
   * if it broke meanwhile.
   */
  afterResume() {
    this.enqueue(async () => {
      if (this.#pendingSdp !== null) {
        // The offer whose answer was lost (null when the socket broke again:
        // sent after the next resume).
        this.#pendingOffer = this.#s.send({ type: 'offer', sdp: this.#pendingSdp });
      }
      for (const pub of this.#host.publications) {
        const sender = pub.transceiver?.sender;
        if (!sender) continue;
        const params = sender.getParameters();
        if (!params.encodings || params.encodings.length < 2 || params.encodings.every((e) => e.active !== false)) continue;
        for (const enc of params.encodings) enc.active = true;
        await sender.setParameters(params);
      }
      if (this.pc.iceConnectionState === 'disconnected' || this.pc.iceConnectionState === 'failed') {
        this.restartIce();
      } else {
        this.negotiate(); // a change made while away
      }
    });
  }

  /**
   * A remote track stops arriving: reported ended.
   * @param {string} trackId
   */
  endRemote(trackId) {
    const r = this.#remote.get(trackId);
    if (!r) return;
    this.#remote.delete(trackId);
    this.#host.emit('track-ended', { track: r.track, participant: r.participant, trackId });
  }

  /** Ends every remote track and closes the peer connection. */
  close() {
    for (const [trackId, r] of this.#remote) {
      this.#host.emit('track-ended', { track: r.track, participant: r.participant, trackId });
    }
    this.#remote.clear();
    this.pc.close();
  }

  /** @param {RTCTrackEvent} ev */
  #onRemoteTrack(ev) {
    const tr = ev.transceiver;
    if (this.#own.has(tr)) return;
    const msid = (tr.mid && this.#msids.get(tr.mid)) || { stream: ev.streams[0]?.id ?? '', track: ev.track.id };
    const info = this.#host.track(msid.track);
    if (!info) return; // unpublished meanwhile
    const prev = this.#remote.get(msid.track);
    if (prev && prev.track === ev.track) return;
    this.#remote.set(msid.track, { track: ev.track, transceiver: tr, participant: msid.stream });
    this.#host.emit('track', { track: ev.track, participant: msid.stream, trackId: msid.track, info, transceiver: tr });
  }

  /** Reports remote tracks whose transceiver no longer receives them. */
  #reconcileRemote() {
    for (const [trackId, r] of this.#remote) {
      const dir = r.transceiver.currentDirection;
      const receiving = dir === 'recvonly' || dir === 'sendrecv';
      const msid = r.transceiver.mid ? this.#msids.get(r.transceiver.mid) : undefined;
      if (!receiving || !msid || msid.track !== trackId) {
        this.#remote.delete(trackId);
        this.#host.emit('track-ended', { track: r.track, participant: r.participant, trackId });
      }
    }
  }

  /**
   * The directions our own transceivers want, as a string; and whether one
   * of them differs from what was last negotiated.
   */
  #ownState() {
    let sig = '';
    let differs = false;
    const all = this.pc.getTransceivers();
    for (const tr of this.#own) {
      if (tr.currentDirection === 'stopped' || tr.direction === 'stopped') continue;
      sig += `${all.indexOf(tr)}:${tr.direction};`;
      if (tr.currentDirection !== tr.direction) differs = true;
    }
    return { sig, differs };
  }

  /**
   * Offers when our publications changed since the last negotiation, unless
   * an offer is in flight (it runs again when that one is settled).
   */
  async #makeOffer() {
    const s = this.#s;
    const pc = this.pc;
    if (!s.joined || s.resuming || this.#pendingSdp !== null || pc.signalingState !== 'stable') return;
    const { sig, differs } = this.#ownState();
    const restart = this.#iceRestart;
    if (!restart && (!differs || sig === this.#answeredSig)) return;
    const offer = await pc.createOffer();
    const id = s.send({ type: 'offer', sdp: offer.sdp });
    if (!id) return;
    this.#pendingOffer = id;
    this.#pendingSdp = offer.sdp ?? '';
    this.#offerSig = sig;
    this.#offerRestart = restart;
  }

  /**
   * Applies a server offer. When ours is in flight the offers collided:
   * the server ignores ours, so it is dropped (it was never applied) and
   * made again after answering.
   * @param {string} sdp
   */
  async #applyOffer(sdp) {
    const pc = this.pc;
    this.#pendingOffer = null;
    this.#pendingSdp = null;
    this.#msids = parseMsids(sdp);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription();
    this.#s.send({ type: 'answer', sdp: pc.localDescription?.sdp });
    this.#reconcileRemote();
    this.negotiate(); // a dropped or waiting change of ours
  }

  /**
   * Applies our offer and the server's answer to it.
   * @param {{id?: string, sdp: string}} msg
   */
  async #applyAnswer(msg) {
    const pc = this.pc;
    if (!this.#pendingOffer || msg.id !== this.#pendingOffer) return; // not for the offer in flight
    const offer = /** @type {string} */ (this.#pendingSdp);
    this.#pendingOffer = null;
    this.#pendingSdp = null;
    await pc.setLocalDescription({ type: 'offer', sdp: offer });
    await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    this.#answeredSig = this.#offerSig;
    if (this.#offerRestart) this.#iceRestart = false;
    this.negotiate();
  }

  /**
   * Our offer was refused (bad-sdp, forbidden): the publications it was
   * adding are dropped, so that it is not made again.
   */
  async #offerRefused() {
    this.#pendingOffer = null;
    this.#pendingSdp = null;
    const pubs = this.#host.publications;
    for (const pub of [...pubs]) {
      const tr = pub.transceiver;
      if (tr && !tr.currentDirection) {
        pubs.splice(pubs.indexOf(pub), 1);
        pub.transceiver = null;
        this.#own.delete(tr);
        tr.stop();
        this.#host.emit('error', { code: 'media-failed', message: `${pub.source} could not be published` });
      }
    }
    this.#answeredSig = this.#ownState().sig;
  }

  /** @param {RTCIceCandidateInit|null} c */
  async #addCandidate(c) {
    const pc = this.pc;
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
}
