// ice.js: the ICE part of the peer connection's configuration, and the
// `relay` option that forces the media through a TURN server reached over
// one transport.

/** @import { RelayTransport } from './types.js' */

/** @type {ReadonlyArray<RelayTransport>} */
export const RELAY_TRANSPORTS = Object.freeze(['udp', 'tcp', 'tls']);

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
  const [, scheme = '', query = ''] = m;
  if (scheme.toLowerCase() === 'turns') return 'tls';
  const transport = new URLSearchParams(query.toLowerCase()).get('transport') ?? 'udp';
  return transport === 'udp' || transport === 'tcp' ? transport : null;
}
