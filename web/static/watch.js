// watch.js: a WHEP player for a room, served at
//   /watch.html?room=NAME[&participant=ID][#token=TOKEN]
// It plays the room's speaker (or one participant) with one request to
// /whep/NAME[/ID]: its offer receives one audio and one video stream, the
// server answers with its candidates, and switches what it sends as
// speakers change, without renegotiating. The token, where the room needs
// one, travels in the fragment, which never reaches a server's logs.

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const video = /** @type {HTMLVideoElement} */ (byId('video'));
const statusEl = byId('status');
const unmute = byId('unmute');
const again = byId('again');

const params = new URLSearchParams(location.search);
const room = params.get('room') ?? '';
const participant = params.get('participant') ?? '';
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';

/**
 * @param {string} text
 * @param {'ok'|'wait'|'error'} [state]
 */
function say(text, state = 'wait') {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
}

/** @type {Record<string, string>} */
const auth = token ? { Authorization: `Bearer ${token}` } : {};

/** What the player is doing, for the page's tests. */
const player = {
  /** @type {RTCPeerConnection|null} */
  pc: null,
  /** @type {string} the session's URL */
  session: '',
};
/** @type {any} */ (window).player = player;

/** Why a request was refused, in words. @param {number} status */
function refusal(status) {
  switch (status) {
    case 401: return 'This room needs a token: add #token=… to the address.';
    case 403: return 'This token may not watch the room.';
    case 404: return participant ? 'Nobody with that id is in the room.' : 'There is no such room.';
    case 429: return 'Too many sessions from this address.';
    case 503: return 'The server is busy or the room is full; try again soon.';
  }
  return `The server refused (HTTP ${status}).`;
}

/** Resolves when candidate gathering completes, or after at most ms. */
function gathered(/** @type {RTCPeerConnection} */ pc, ms = 2000) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve(undefined);
    const t = setTimeout(resolve, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(t);
        resolve(undefined);
      }
    });
  });
}

async function watch() {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(room)) {
    say('No room to watch: open /watch.html?room=NAME.', 'error');
    return;
  }
  byId('title').textContent = participant ? `${room} · ${participant}` : room;
  document.title = `${room} · Watching · Tessera`;
  const pc = new RTCPeerConnection();
  player.pc = pc;
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addEventListener('track', (ev) => {
    stream.addTrack(ev.track);
    play();
  });
  pc.addEventListener('connectionstatechange', () => {
    switch (pc.connectionState) {
      case 'connected': say(video.videoWidth ? 'Playing.' : 'Connected: waiting for a picture…', 'ok'); break;
      case 'failed': case 'closed': ended('The stream ended.'); break;
    }
  });
  video.addEventListener('resize', () => {
    if (pc.connectionState === 'connected') say('Playing.', 'ok');
  });

  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  let path = `/whep/${encodeURIComponent(room)}`;
  if (participant) path += `/${encodeURIComponent(participant)}`;
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...auth },
    body: pc.localDescription?.sdp ?? '',
  });
  if (resp.status !== 201) {
    pc.close();
    ended(refusal(resp.status));
    return;
  }
  player.session = new URL(resp.headers.get('Location') ?? '', resp.url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  say('Connecting…');
}

/** Plays, muted if the browser will not play sound before a click. */
function play() {
  video.play().catch(() => {
    video.muted = true;
    unmute.hidden = false;
    video.play().catch(() => {});
  });
}

/** @param {string} why */
function ended(why) {
  say(why, 'error');
  again.hidden = false;
  unmute.hidden = true;
}

unmute.addEventListener('click', () => {
  video.muted = false;
  unmute.hidden = true;
  play();
});
again.addEventListener('click', () => location.reload());
addEventListener('pagehide', () => {
  if (player.session) fetch(player.session, { method: 'DELETE', headers: auth, keepalive: true }).catch(() => {});
  player.pc?.close();
});

watch().catch((err) => ended(`Cannot watch: ${err instanceof Error ? err.message : String(err)}`));
