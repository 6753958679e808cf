// types.js: the client's public types, as JSDoc for tsc and for readers.
// The module exports no values, so no page loads it; sfu.js re-exports
// these types.

/**
 * @typedef {object} TrackInfo A published track, as the server describes it.
 * @property {string} id Server track id.
 * @property {string} participant Publisher's participant id.
 * @property {'audio'|'video'} kind
 * @property {string[]} layers Simulcast rids, lowest quality first; empty without simulcast.
 * @property {boolean} muted
 * @property {string} codec The MIME type the publisher sends, e.g. `video/VP8`.
 * @property {string} [unsupported] Set when this client cannot receive the
 *   track: the server's explanation (the codec is one it does not decode).
 * @property {string} [mid] Only in the publisher's own copy: the mid it published on.
 */

/**
 * @typedef {object} ParticipantInfo
 * @property {string} id
 * @property {string} name
 * @property {TrackInfo[]} tracks In publication order.
 * @property {string} [via] "whip" for a publisher that joined over WHIP,
 *   "whep" for a viewer watching over WHEP (it publishes nothing, and
 *   receives what the server sends it, outside the call).
 */

/**
 * @typedef {object} ServerError An `error` reply, or a failure of the client itself.
 * @property {string} code The protocol's code (`bad-request`, `room-full`, ...), or
 *   `negotiation-failed` / `media-failed` for a failure inside the browser.
 * @property {string} message
 * @property {string|undefined} [id] Id of the request it answers.
 * @property {string|undefined} [request] Type of that request (`join`, `offer`, `mute`, ...).
 */

/**
 * @typedef {'new'|'connecting'|'connected'|'disconnected'|'reconnecting'|'failed'|'closed'} ConnectionState
 * `connecting`: joining or waiting for ICE; `disconnected`: media interrupted
 * while the socket stays up; `reconnecting`: the socket dropped and the
 * session is being resumed (media keeps flowing meanwhile) or a new one is
 * on its way; `failed`: the client gave up; `closed`: left.
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] WebSocket URL; defaults to `/ws` on the page's host.
 * @property {boolean} [reconnect=true] Reconnect when the socket drops.
 * @property {boolean} [resume=true] Resume the session (same participant,
 *   peer connection and publications) when the socket breaks, before
 *   falling back to a new join; needs `reconnect`.
 * @property {number} [resumeTimeout=12000] How long (ms) to try resuming
 *   before joining afresh; keep it below the server's `rooms.resume_grace`
 *   (15 s by default).
 * @property {number} [minDelay=500] First reconnection delay, in ms.
 * @property {number} [maxDelay=10000] Largest reconnection delay, in ms.
 * @property {RTCConfiguration} [rtcConfig] Extra RTCPeerConnection settings;
 *   the server's `iceServers` are added to them.
 * @property {RelayTransport} [relay] Force the media through a TURN relay
 *   reached over this transport: ICE uses relay candidates only
 *   (`iceTransportPolicy: 'relay'`) and of the ICE servers (`rtcConfig`'s
 *   and the server's) only the TURN URLs of that transport are kept (`udp`:
 *   `turn:` with `transport=udp` or none; `tcp`: `turn:` with
 *   `transport=tcp`; `tls`: `turns:`). For diagnosis and tests; without a
 *   TURN server of that transport the media cannot connect.
 */

/**
 * @typedef {Required<Omit<ClientOptions, 'relay'>> & Pick<ClientOptions, 'relay'>} Options
 *   The options in force: {@link ClientOptions} with the defaults filled in.
 */

/**
 * @typedef {object} JoinOptions
 * @property {string} [token] The join token, when the room needs one.
 * @property {boolean} [autoSubscribe] False to subscribe to nothing by oneself.
 * @property {string[]} [videoCodecs] Restricts the video codecs this client
 *   sends and says it decodes to these MIME types (e.g. `['video/H264']`).
 */

/**
 * @typedef {object} Joined The payload of `joined`, and what join() resolves with.
 * @property {{id: string, name: string}} participant
 * @property {ParticipantInfo[]} participants
 * @property {boolean} rejoined
 */

/**
 * @typedef {'udp'|'tcp'|'tls'} RelayTransport How a client reaches a TURN server.
 */

/**
 * @typedef {object} MediaPath How the media of a peer connection flows, from
 * its selected ICE candidate pair.
 * @property {'udp'|'tcp'|'relay-udp'|'relay-tcp'|'relay-tls'} path `udp` or
 *   `tcp`: directly to the server; `relay-*`: through a TURN server reached
 *   over UDP, TCP or TLS.
 * @property {string} local The local candidate, e.g. `relay 10.0.0.1:5000 udp via tcp`.
 * @property {string} remote The remote candidate, e.g. `host 192.0.2.7:3478 udp`.
 */

/**
 * @typedef {object} Msid The `a=msid` of an m-section the server sends on.
 * @property {string} stream The publisher's participant id.
 * @property {string} track The server's track id.
 */

/**
 * @typedef {(type: string, detail?: unknown) => void} Emit Dispatches one of
 *   the client's events.
 */

export {};
