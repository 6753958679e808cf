// sfu.js: a client for the tessera signaling protocol, version 1
// (docs/protocol.md). One WebSocket and one RTCPeerConnection per session;
// the client is the polite peer of perfect negotiation, without rollback.
// A socket that breaks does not end the session: a new socket resumes it
// while the media keeps flowing (docs/protocol.md, "Resuming").
//
// This is the module pages import. The client is ES modules in sfu/, one
// job each, loaded as they are (no build step):
//   client.js       SFUClient: the public API, sessions, events, reconnection
//   session.js      one connection: its socket and the write path
//   negotiation.js  the peer connection: offers, answers, transceivers, remote tracks
//   resume.js       a session whose socket broke, resumed by new sockets
//   room.js         the room as the client knows it, from the server's events
//   media.js        publications, simulcast encodings, codecs
//   ice.js          ICE servers and the `relay` option
//   stats.js        the media path, from the peer connection's statistics
//   protocol.js     reading the server's messages; close and error codes
//   types.js        the public types, as JSDoc (checked by tsc, see web/tsconfig.json)

export { SFUClient } from './sfu/client.js';
export { Publication, SIMULCAST_ENCODINGS } from './sfu/media.js';
export { iceConfig } from './sfu/ice.js';
export { parseMsids } from './sfu/protocol.js';

/** @typedef {import('./sfu/types.js').TrackInfo} TrackInfo */
/** @typedef {import('./sfu/types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./sfu/types.js').ServerError} ServerError */
/** @typedef {import('./sfu/types.js').ConnectionState} ConnectionState */
/** @typedef {import('./sfu/types.js').ClientOptions} ClientOptions */
/** @typedef {import('./sfu/types.js').JoinOptions} JoinOptions */
/** @typedef {import('./sfu/types.js').RelayTransport} RelayTransport */
/** @typedef {import('./sfu/types.js').MediaPath} MediaPath */
