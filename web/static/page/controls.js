// controls.js: the local camera, microphone and screen, and the controls
// that drive them: mute buttons, screen sharing, the devices dialog, the
// share link.

import { render } from './tiles.js';
import { errText, toast } from './status.js';
import { state, ui } from './state.js';

const VIDEO_CONSTRAINTS = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** Wires the controls of the call to what they do. */
export function initControls() {
  ui.mic.addEventListener('click', toggleMic);
  ui.camera.addEventListener('click', toggleCamera);
  ui.screen.addEventListener('click', toggleScreen);
  ui.settings.addEventListener('click', openDevices);
  ui.copyLink.addEventListener('click', copyShareLink);
  ui.micSelect.addEventListener('change', () => switchDevice('mic', ui.micSelect.value));
  ui.camSelect.addEventListener('change', () => switchDevice('camera', ui.camSelect.value));
  navigator.mediaDevices?.addEventListener?.('devicechange', () => {
    if (ui.devices.open) fillDeviceLists();
  });
  if (!navigator.mediaDevices?.getDisplayMedia) ui.screen.hidden = true;
}

/** Opens the camera and microphone, telling what is missing. */
export async function acquireMedia() {
  const md = navigator.mediaDevices;
  if (!md?.getUserMedia) {
    toast('No camera or microphone access', 'This page is not a secure context (https) or the browser has no media devices: you join without sending audio or video.');
    return;
  }
  /** @type {MediaStream|null} */
  let stream = null;
  try {
    stream = await md.getUserMedia({ audio: AUDIO_CONSTRAINTS, video: VIDEO_CONSTRAINTS });
  } catch {
    const parts = await Promise.allSettled([
      md.getUserMedia({ audio: AUDIO_CONSTRAINTS }),
      md.getUserMedia({ video: VIDEO_CONSTRAINTS }),
    ]);
    stream = new MediaStream();
    for (const p of parts) {
      if (p.status === 'fulfilled') p.value.getTracks().forEach((t) => stream?.addTrack(t));
    }
  }
  state.tracks.mic = stream.getAudioTracks()[0] ?? null;
  state.tracks.camera = stream.getVideoTracks()[0] ?? null;
  if (!state.tracks.mic && !state.tracks.camera) {
    toast('No camera or microphone', 'They are missing or access was refused: you join without sending audio or video.');
  } else if (!state.tracks.mic) {
    toast('No microphone', 'It is missing or access was refused: the others will not hear you.');
  } else if (!state.tracks.camera) {
    toast('No camera', 'It is missing or access was refused: you join with audio only.');
  }
  if (state.tracks.mic) state.tracks.mic.enabled = !state.micMuted;
  if (state.tracks.camera) state.tracks.camera.enabled = !state.camMuted;
}

export function stopLocalMedia() {
  for (const key of /** @type {const} */ (['mic', 'camera', 'screen'])) {
    state.tracks[key]?.stop();
    state.tracks[key] = null;
    state.pubs[key] = null;
  }
}

function toggleMic() {
  state.micMuted = !state.micMuted;
  if (state.pubs.mic && state.client) state.client.mute(state.pubs.mic, state.micMuted);
  else if (state.tracks.mic) state.tracks.mic.enabled = !state.micMuted;
  updateControls();
  render();
}

function toggleCamera() {
  state.camMuted = !state.camMuted;
  if (state.pubs.camera && state.client) state.client.mute(state.pubs.camera, state.camMuted);
  else if (state.tracks.camera) state.tracks.camera.enabled = !state.camMuted;
  updateControls();
  render();
}

async function toggleScreen() {
  const client = state.client;
  if (!client) return;
  if (state.tracks.screen) {
    stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (err) {
    if (/** @type {Error} */ (err).name !== 'NotAllowedError' && /** @type {Error} */ (err).name !== 'AbortError') {
      toast('Cannot share the screen', errText(err));
    }
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track || state.client !== client) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  track.contentHint = 'detail';
  track.addEventListener('ended', () => {
    if (state.tracks.screen === track) stopScreen();
  });
  state.tracks.screen = track;
  state.pubs.screen = client.publish(track, { source: 'screen', stream });
  updateControls();
  render();
}

function stopScreen() {
  if (state.pubs.screen && state.client) state.client.unpublish(state.pubs.screen);
  state.tracks.screen?.stop();
  state.tracks.screen = null;
  state.pubs.screen = null;
  updateControls();
  render();
}

export function updateControls() {
  setToggle(ui.mic, state.micMuted, state.micMuted ? 'Unmute' : 'Mute', !state.tracks.mic);
  setToggle(ui.camera, state.camMuted, state.camMuted ? 'Start video' : 'Stop video', !state.tracks.camera);
  setToggle(ui.screen, !!state.tracks.screen, state.tracks.screen ? 'Stop sharing' : 'Share screen', false);
}

/**
 * Shows a control's state. The label says what a click does, so the
 * accessible name carries the state (no aria-pressed on top of it).
 * @param {HTMLElement} button
 * @param {boolean} active muted, camera off, or sharing
 * @param {string} label
 * @param {boolean} disabled
 */
function setToggle(button, active, label, disabled) {
  button.dataset.active = String(active);
  /** @type {HTMLElement} */ (button.querySelector('.label')).textContent = label;
  /** @type {HTMLButtonElement} */ (button).disabled = disabled;
}

async function openDevices() {
  await fillDeviceLists();
  ui.devices.showModal();
}

async function fillDeviceLists() {
  /** @type {MediaDeviceInfo[]} */
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    devices = [];
  }
  fillSelect(ui.micSelect, devices.filter((d) => d.kind === 'audioinput'), state.tracks.mic, 'Microphone');
  fillSelect(ui.camSelect, devices.filter((d) => d.kind === 'videoinput'), state.tracks.camera, 'Camera');
}

/**
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {MediaStreamTrack|null} current
 * @param {string} noun
 */
function fillSelect(select, devices, current, noun) {
  const currentId = current?.getSettings().deviceId ?? '';
  select.replaceChildren(...devices.map((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `${noun} ${i + 1}`;
    o.selected = d.deviceId === currentId;
    return o;
  }));
  select.disabled = devices.length < 2 || !current;
}

/**
 * Switches to another microphone or camera, replacing the sent track
 * without renegotiation.
 * @param {'mic'|'camera'} which
 * @param {string} deviceId
 */
async function switchDevice(which, deviceId) {
  const old = state.tracks[which];
  if (!old || old.getSettings().deviceId === deviceId) return;
  const constraints = which === 'mic'
    ? { audio: { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } } }
    : { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } };
  let track;
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    track = which === 'mic' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    if (!track) throw new Error('the device gave no track');
  } catch (err) {
    toast(`Cannot use this ${which === 'mic' ? 'microphone' : 'camera'}`, errText(err));
    return;
  }
  track.enabled = !(which === 'mic' ? state.micMuted : state.camMuted);
  const pub = state.pubs[which];
  try {
    if (pub && state.client) await state.client.replaceTrack(pub, track);
  } catch (err) {
    track.stop();
    toast('Cannot switch devices', errText(err));
    return;
  }
  state.tracks[which] = track;
  old.stop();
  render();
}

async function copyShareLink() {
  const link = ui.shareLink.value;
  let ok = false;
  try {
    await navigator.clipboard.writeText(link);
    ok = true;
  } catch {
    ui.shareLink.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  ui.copyStatus.textContent = ok ? 'Link copied' : 'Select the link and copy it';
  setTimeout(() => { ui.copyStatus.textContent = ''; }, 3000);
}
