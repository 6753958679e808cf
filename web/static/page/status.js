// status.js: what the page tells the person: the connection indicator and
// the media path, messages (toasts), announcements for screen readers, and
// the join form's error.

import { state, ui } from './state.js';

/** @import { ConnectionState, MediaPath, ServerError } from '../sfu.js' */

/** @type {Record<string, string>} how each media path is shown, by {@link SFUClient#mediaPath}'s `path` */
const PATH_TEXT = {
  udp: 'direct (UDP)',
  tcp: 'direct (TCP)',
  'relay-udp': 'relayed (TURN over UDP)',
  'relay-tcp': 'relayed (TURN over TCP)',
  'relay-tls': 'relayed (TURN over TLS)',
};

/** @param {ConnectionState} s */
export function setConnection(s) {
  const text = {
    new: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    disconnected: 'Connection unstable',
    reconnecting: 'Reconnecting…',
    failed: 'Disconnected',
    closed: 'Not connected',
  }[s] ?? s;
  ui.conn.dataset.state = s;
  ui.connText.textContent = text;
  refreshPath();
}

/** Looks up how the call's media flows and shows it; nothing unless connected. */
export async function refreshPath() {
  const client = state.client;
  const lookup = ++state.pathLookups;
  const path = client?.connectionState === 'connected' ? await client.mediaPath() : null;
  if (lookup === state.pathLookups) showPath(path);
}

/** @param {MediaPath|null} p */
function showPath(p) {
  const text = p ? PATH_TEXT[p.path] ?? p.path : '';
  if (ui.path.textContent !== text) ui.path.textContent = text; // unchanged text is not announced again
  ui.path.dataset.path = p?.path ?? '';
  ui.path.title = p ? `Local: ${p.local}\nRemote: ${p.remote}` : '';
  ui.path.hidden = !p;
}

/** @param {string} msg */
export function showFormError(msg) {
  ui.joinError.textContent = msg;
  ui.joinError.hidden = !msg;
}

/**
 * A title for an error of the client.
 * @param {ServerError} e
 */
export function errorTitle(e) {
  switch (e.code) {
    case 'room-full': return 'The room is full';
    case 'unauthorized': return 'Not allowed to join';
    case 'room-not-found': return 'No such room';
    case 'forbidden': return 'Not allowed';
    case 'negotiation-failed': return 'Connection problem';
    case 'media-failed': return 'Media problem';
    default: return e.request ? `The server refused “${e.request}”` : 'Server error';
  }
}

/**
 * Shows a message until dismissed (errors) or for a while (information).
 * @param {string} title
 * @param {string} message
 * @param {string} [action] label of an optional action button
 * @param {() => void} [onAction]
 * @returns {HTMLElement}
 */
export function toast(title, message, action, onAction) {
  state.messages.push({ kind: action ? 'info' : 'error', title, message });
  if (state.messages.length > 100) state.messages.shift();
  const t = document.createElement('div');
  t.className = action ? 'toast info' : 'toast';
  t.setAttribute('role', 'alert');
  const body = document.createElement('div');
  const strong = document.createElement('strong');
  strong.textContent = title;
  const p = document.createElement('p');
  p.textContent = message;
  body.append(strong, p);
  t.append(body);
  if (action && onAction) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = action;
    b.addEventListener('click', () => { onAction(); t.remove(); });
    t.append(b);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'toast-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => t.remove());
  t.append(close);
  ui.toasts.append(t);
  while (ui.toasts.children.length > 4) ui.toasts.firstElementChild?.remove();
  setTimeout(() => t.remove(), 15_000);
  return t;
}

/** @param {string} msg */
export function say(msg) {
  ui.announce.textContent = msg;
}

/** @param {unknown} err */
export function errText(err) {
  return err instanceof Error ? err.message : String(err);
}
