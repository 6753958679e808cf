// protocol.js: reading what the server sends (docs/protocol.md): tracks
// and participants normalized whatever their JSON holds, the msids of an
// offer, and the codes that decide whether a session can go on.

/** @import { Msid, ParticipantInfo, TrackInfo } from './types.js' */

/**
 * Join errors after which reconnecting cannot help.
 * @type {ReadonlySet<string>}
 */
export const FATAL_JOIN_CODES = new Set(['bad-request', 'unauthorized', 'room-not-found', 'already-joined']);

/**
 * Close codes after which a session is not resumed: the server ended it on
 * purpose (1000 after `leave`, 1001 shutting down, 1008 flooding, 1009 a
 * frame too large, 4000 removed, 4002 no join in time). Any other close,
 * 1006 (no close frame) first, may be the network: the session is resumed.
 * @type {ReadonlySet<number>}
 */
export const FINAL_CLOSE_CODES = new Set([1000, 1001, 1008, 1009, 4000, 4002]);

/**
 * Reads the `a=msid` of each m-section of a description.
 * @param {string} sdp
 * @returns {Map<string, Msid>} by mid
 */
export function parseMsids(sdp) {
  /** @type {Map<string, Msid>} */
  const out = new Map();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    const msid = /^a=msid:(\S+) (\S+)/m.exec(section);
    if (mid && msid?.[1] && msid[2]) out.set(mid, { stream: msid[1], track: msid[2] });
  }
  return out;
}

/**
 * @param {any} t a track as the server sent it
 * @returns {TrackInfo}
 */
export function normTrack(t) {
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
 * @param {any} p a participant as the server sent it
 * @returns {ParticipantInfo}
 */
export function normParticipant(p) {
  /** @type {ParticipantInfo} */
  const out = { id: String(p.id), name: String(p.name ?? ''), tracks: (p.tracks ?? []).map(normTrack) };
  if (p.via) out.via = String(p.via);
  return out;
}

/**
 * @param {unknown} err
 * @returns {string}
 */
export function errorText(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
