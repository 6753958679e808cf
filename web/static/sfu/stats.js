// stats.js: how the media flows, read from the peer connection's
// statistics: directly to the server over UDP or TCP, or through a TURN
// relay, and the candidates at both ends.

/** @import { MediaPath } from './types.js' */

/**
 * The media path of a peer connection: null until it is connected, and
 * when the browser names no selected candidate pair.
 * @param {RTCPeerConnection|null} pc
 * @returns {Promise<MediaPath|null>}
 */
export async function mediaPathOf(pc) {
  if (!pc || pc.connectionState !== 'connected') return null;
  try {
    return selectedPath(await pc.getStats());
  } catch {
    return null; // closed meanwhile
  }
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
