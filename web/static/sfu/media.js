// media.js: what this client sends and decodes: its publications, the
// simulcast encodings of a camera, and the codecs it sends and says it
// decodes.

/**
 * Simulcast encodings for a camera: quarter, half and full resolution, with
 * the rids the server expects.
 * @type {ReadonlyArray<RTCRtpEncodingParameters>}
 */
export const SIMULCAST_ENCODINGS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 }),
]);

/**
 * A track this client publishes. It survives reconnections: after a new
 * join it is published again and gets a new server id.
 */
export class Publication {
  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {{simulcast?: boolean, source?: string, muted?: boolean}} opts
   */
  constructor(track, stream, opts) {
    /** @type {MediaStreamTrack} The track being sent. */
    this.track = track;
    /** @type {MediaStream} The stream given to addTransceiver. */
    this.stream = stream;
    /** @readonly @type {'audio'|'video'} */
    this.kind = /** @type {'audio'|'video'} */ (track.kind);
    /** @type {string} A free label for the application (`camera`, `screen`, ...). */
    this.source = opts.source ?? track.kind;
    /** @type {boolean} Whether it was published with simulcast encodings. */
    this.simulcast = false;
    /** @type {boolean} */
    this.muted = !!opts.muted;
    /** @type {string|null} The server's track id, once announced. */
    this.id = null;
    /** @type {RTCRtpTransceiver|null} The transceiver of the current session. */
    this.transceiver = null;
    /** @readonly @internal Whether simulcast was asked for (video only). */
    this.wantSimulcast = !!opts.simulcast && track.kind === 'video';
  }
}

/**
 * Whether a transceiver sends simulcast (more than one encoding).
 * @param {RTCRtpTransceiver} tr
 * @returns {boolean}
 */
export function spareSimulcast(tr) {
  return (tr.sender.getParameters().encodings?.length ?? 0) > 1;
}

/**
 * Limits what a video transceiver sends to the MIME types in `only` (and
 * their retransmission format); nothing changes without `only`.
 * @param {RTCRtpTransceiver} tr
 * @param {string[]} [only]
 */
export function preferCodecs(tr, only) {
  if (!only || typeof tr.setCodecPreferences !== 'function') return;
  const lower = only.map((m) => m.toLowerCase());
  const codecs = (RTCRtpReceiver.getCapabilities('video')?.codecs ?? [])
    .filter((c) => lower.includes(c.mimeType.toLowerCase()) || c.mimeType.toLowerCase() === 'video/rtx');
  try {
    tr.setCodecPreferences(codecs);
  } catch {
    // a codec this browser does not have: it sends what it has
  }
}

/**
 * What this browser decodes, for `join`: media codecs only, video limited
 * to `only` when given. Undefined where the browser cannot tell.
 * @param {string[]} [only] video MIME types
 * @returns {{mimeType: string, sdpFmtpLine?: string}[]|undefined}
 */
export function decodableCodecs(only) {
  if (typeof RTCRtpReceiver === 'undefined' || typeof RTCRtpReceiver.getCapabilities !== 'function') return undefined;
  const lower = only?.map((m) => m.toLowerCase());
  /** @type {{mimeType: string, sdpFmtpLine?: string}[]} */
  const out = [];
  for (const kind of ['audio', 'video']) {
    for (const c of RTCRtpReceiver.getCapabilities(kind)?.codecs ?? []) {
      const mime = c.mimeType.toLowerCase();
      if (/\/(rtx|red|ulpfec|flexfec-03|cn|telephone-event)$/.test(mime)) continue;
      if (kind === 'video' && lower && !lower.includes(mime)) continue;
      out.push(c.sdpFmtpLine ? { mimeType: c.mimeType, sdpFmtpLine: c.sdpFmtpLine } : { mimeType: c.mimeType });
    }
  }
  return out;
}

