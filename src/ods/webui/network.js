// Network tab: register with another server, the mesh as a picture, the peers,
// and whom this server trusts (trust.js).

import { html, useContext, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  About,
  Badge,
  Banner,
  Confirm,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  StageBadge,
  Time,
  ago,
  can,
  useApi,
  useEvents,
  useMe,
  useSubmit,
} from './ui.js';
import { TrustCard } from './trust.js';

const PEERS_SECONDS = 10;

export function NetworkTab() {
  const me = useMe();
  const { about } = useContext(About);
  const peers = useApi(() => api.get('/api/admin/registered_ods'), [], PEERS_SECONDS);
  useEvents(['peer.'], () => peers.reload());
  const items = peers.data ? peers.data.items : [];

  return html`<div class="stack-lg">
    ${can(me, 'admin') && html`<${RegisterForm} about=${about} onRegistered=${peers.reload} />`}
    <section class="card" aria-labelledby="mesh-title">
      <header class="card-header">
        <h2 id="mesh-title">Mesh</h2>
        <span class="muted small">${items.length} registered ${items.length === 1 ? 'server' : 'servers'}</span>
      </header>
      <${ErrorBanner} error=${peers.error} />
      ${peers.loading && !peers.data
        ? html`<${Loading} />`
        : html`<${MeshPicture} about=${about} peers=${items} />`}
    </section>
    <section class="card" aria-labelledby="peers-title">
      <h2 id="peers-title">Registered servers</h2>
      ${peers.data &&
      (items.length
        ? html`<${PeerTable} peers=${items} canEdit=${can(me, 'admin')} onChanged=${peers.reload} />`
        : html`<${Empty} title="No registered servers yet">
            Register with another ODS above with its URL, ISS ID and key, which its admin reads
            on its Admin tab. Both servers then push new packages to each other.
          <//>`)}
    </section>
    <${TrustCard} peers=${items} />
  </div>`;
}

function RegisterForm({ about, onRegistered }) {
  const [url, setUrl] = useState('');
  const [iss, setIss] = useState('');
  const [key, setKey] = useState('');
  const [done, setDone] = useState(null);
  const unnamed = about && (!about.name || !about.url);

  const { submit, busy, error, setError } = useSubmit(async () => {
    setDone(null);
    const peer = await api.post('/api/admin/register', {
      url: url.trim(),
      iss_id: iss.trim().toLowerCase(),
      key: key.trim(),
    });
    setDone(`Registered with ${peer.name || peer.url}. Both servers now share new packages.`);
    setUrl('');
    setIss('');
    setKey('');
    onRegistered();
  });

  return html`<section class="card" aria-labelledby="register-title">
    <h2 id="register-title">Register with another server</h2>
    ${unnamed &&
    html`<${Banner} kind="warning">
      Set this server's name and URL on the Admin tab first: the other server reaches this one at
      that URL.
    <//>`}
    <${ErrorBanner} error=${error} onClose=${() => setError(null)} />
    <${Banner} kind="success" onClose=${() => setDone(null)}>${done}<//>
    <form class="form-row" onSubmit=${submit}>
      <${Field} id="register-url" label="URL" hint="The other server's URL, as this one reaches it.">
        <input id="register-url" type="url" required placeholder="https://ods2.example.com"
          value=${url} onInput=${(e) => setUrl(e.target.value)} />
      <//>
      <${Field} id="register-iss" label="ISS ID" hint="32 hex characters, from its Admin tab.">
        <input id="register-iss" required pattern="\\s*[0-9a-fA-F]{32}\\s*" spellcheck="false"
          autocomplete="off" value=${iss} onInput=${(e) => setIss(e.target.value)} />
      <//>
      <${Field} id="register-key" label="Key" hint="Its key, from the same place.">
        <input id="register-key" type="password" required autocomplete="off" spellcheck="false"
          value=${key} onInput=${(e) => setKey(e.target.value)} />
      <//>
      <div class="form-row-actions">
        <button type="submit" class="primary" disabled=${busy}>${busy ? 'Registering…' : 'Register'}</button>
      </div>
    </form>
  </section>`;
}

function linkState(peer) {
  if (!peer.reachable) return 'down';
  return peer.last_contact ? 'up' : 'unknown';
}

const LINK_WORDS = { up: 'reachable', down: 'unreachable', unknown: 'not contacted yet' };

// A peer's url becomes a link only when it is http(s): a url stored before ODS
// checked them (`javascript:…`, say) is shown as text, never made clickable.
function isWebUrl(url) {
  try {
    return ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

function PeerUrl({ url }) {
  return isWebUrl(url)
    ? html`<a href=${url} target="_blank" rel="noopener noreferrer" class="small">${url}</a>`
    : html`<span class="small peer-url-text">${url}</span><br />
        <${Badge} kind="bad">not an http(s) URL: register again<//>`;
}

// The words for a link that is not encrypted. Requests, answers and packages are
// signed, so tampering is caught; only privacy depends on https.
const PLAIN_HTTP = 'http — not encrypted';
const PLAIN_HTTP_RISK = 'traffic can be read on the way; tampering is still caught';
const PLAIN_HTTP_WHY =
  'Every request and answer between the two servers is signed with their link secret, ' +
  'every package with its origin server\'s key, and every chunk is checked against the ' +
  'signed digests: someone on the network path cannot alter what is published. But they ' +
  'can read this traffic. Use an https url across networks you do not control ' +
  '(Building a mesh, in the ODS documentation).';

function plainHttp(peer) {
  return peer.transport !== 'https';
}

// The mark of a link that is not encrypted, with what that means.
function PlainHttpMark() {
  return html`<span class="transport-plain" title=${PLAIN_HTTP_WHY}>
    <${Badge} kind="warn">${PLAIN_HTTP}<//>
    <span class="small muted"> ${PLAIN_HTTP_RISK}</span>
  </span>`;
}

function shorten(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

// A name in at most `count` lines of about `width` characters, cut at words.
function lines(text, width, count) {
  const found = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!line) line = word;
    else if (`${line} ${word}`.length <= width) line = `${line} ${word}`;
    else {
      found.push(line);
      line = word;
    }
  }
  if (line) found.push(line);
  const shown = found.slice(0, count).map((part) => shorten(part, width));
  if (found.length > count) shown[count - 1] = shorten(`${shown[count - 1]} …`, width);
  return shown;
}

// This server in the centre, its peers around it, each link coloured by its
// state; dashed when pushes do not flow (a firewalled side polls instead).
export function MeshPicture({ about, peers }) {
  const width = 720;
  const count = peers.length;
  const height = count === 0 ? 220 : count <= 2 ? 250 : count > 6 ? 440 : 360;
  const cx = width / 2;
  const cy = height / 2;
  const rx = count <= 2 ? 230 : Math.min(270, 140 + count * 18);
  const ry = height / 2 - 56;
  // One or two peers side by side; more around a ring from the top.
  const start = count <= 2 ? 0 : -Math.PI / 2;
  const placed = peers.map((peer, index) => {
    const angle = start + (2 * Math.PI * index) / count;
    return { peer, x: cx + rx * Math.cos(angle), y: cy + ry * Math.sin(angle) };
  });
  const me = about || { name: '', stage: '', firewalled_mode: false };
  const names = lines(me.name || 'This server', 13, 2);
  const summary = peers.length
    ? `${me.name || 'This server'} and ${peers.length} registered servers: ` +
      peers
        .map(
          (peer) =>
            `${peer.name} ${LINK_WORDS[linkState(peer)]}${plainHttp(peer) ? ` (${PLAIN_HTTP})` : ''}`,
        )
        .join(', ')
    : `${me.name || 'This server'} has no registered servers`;

  return html`<figure class="mesh">
    <svg viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${summary}>
      ${placed.map(({ peer, x, y }) => {
        const state = linkState(peer);
        const polled = peer.firewalled_mode || me.firewalled_mode;
        const pending = peer.pending_from + peer.pending_to;
        return html`<g class=${`link link-${state}`}>
          <line x1=${cx} y1=${cy} x2=${x} y2=${y} class=${polled ? 'polled' : ''} />
          ${pending > 0 &&
          html`<text class="link-label" x=${(cx + x) / 2} y=${(cy + y) / 2 - 6} text-anchor="middle">
            ${peer.pending_from ? `↓${peer.pending_from}` : ''} ${peer.pending_to ? `↑${peer.pending_to}` : ''}
          </text>`}
        </g>`;
      })}
      <g class="node node-self">
        <title>${me.name || 'This server'} (this server)</title>
        <circle cx=${cx} cy=${cy} r="52" />
        ${names.map(
          (part, index) => html`<text x=${cx} y=${cy - 6 - 15 * (names.length - 1) + 15 * index}
            text-anchor="middle" class="node-name">${part}</text>`,
        )}
        <text x=${cx} y=${cy + 20} text-anchor="middle" class="node-stage">${me.stage}</text>
      </g>
      ${placed.map(({ peer, x, y }) => {
        const state = linkState(peer);
        return html`<g class=${`node node-peer node-${state}`}>
          <title>${peer.name} · ${peer.url} · ${LINK_WORDS[state]}${plainHttp(peer) ? ` · ${PLAIN_HTTP}` : ''}${peer.last_error ? ` · ${peer.last_error}` : ''}</title>
          <circle cx=${x} cy=${y} r="30" />
          <text x=${x} y=${y + 4} text-anchor="middle" class="node-stage">${peer.stage}</text>
          <text x=${x} y=${y + 48} text-anchor="middle" class="node-label">${shorten(peer.name, 22)}</text>
          ${plainHttp(peer) &&
          html`<text x=${x} y=${y + 64} text-anchor="middle" class="node-transport">http</text>`}
        </g>`;
      })}
      ${!peers.length &&
      html`<text x=${cx} y=${cy + 72} text-anchor="middle" class="muted-text">
        No registered servers yet
      </text>`}
    </svg>
    <figcaption class="legend">
      <span><i class="swatch swatch-up"></i> reachable</span>
      <span><i class="swatch swatch-down"></i> unreachable</span>
      <span><i class="swatch swatch-unknown"></i> not contacted yet</span>
      <span><i class="swatch swatch-polled"></i> polled (firewalled)</span>
      <span>↓ fetching from it · ↑ waiting to notify it</span>
      ${peers.some(plainHttp) &&
      html`<span title=${PLAIN_HTTP_WHY}>
        <b class="legend-transport">http</b> — not encrypted: ${PLAIN_HTTP_RISK}
      </span>`}
    </figcaption>
  </figure>`;
}

function PeerTable({ peers, canEdit, onChanged }) {
  const [leaving, setLeaving] = useState(null);
  return html`<div class="table-wrap">
    <table class="responsive">
      <thead>
        <tr>
          <th scope="col">Server</th>
          <th scope="col">Stage</th>
          <th scope="col">Firewalled</th>
          <th scope="col">Registered on</th>
          <th scope="col">Link</th>
          <th scope="col">Last contact</th>
          <th scope="col">Last error</th>
          <th scope="col">Pending</th>
          ${canEdit && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
        </tr>
      </thead>
      <tbody>
        ${peers.map((peer) => {
          const state = linkState(peer);
          return html`<tr key=${peer.id}>
            <td data-label="Server">
              <strong>${peer.name}</strong><br />
              <${PeerUrl} url=${peer.url} />
              ${plainHttp(peer) && isWebUrl(peer.url) && html`<br /><${PlainHttpMark} />`}
            </td>
            <td data-label="Stage"><${StageBadge} stage=${peer.stage} /></td>
            <td data-label="Firewalled">${peer.firewalled_mode ? 'Yes' : 'No'}</td>
            <td data-label="Registered on"><${Time} iso=${peer.registered_on} /></td>
            <td data-label="Link">
              <${Badge} kind=${state === 'up' ? 'ok' : state === 'down' ? 'bad' : 'neutral'}>
                ${state === 'up' ? 'Reachable' : state === 'down' ? 'Unreachable' : 'Not contacted'}
              <//>
            </td>
            <td data-label="Last contact" title=${peer.last_contact || ''}>${ago(peer.last_contact)}</td>
            <td data-label="Last error" class="error-text">${peer.last_error || html`<span class="muted">–</span>`}</td>
            <td data-label="Pending">
              <span title="Packages being fetched from this server">↓ ${peer.pending_from}</span>
              <span title="Notifications not yet delivered to this server"> ↑ ${peer.pending_to}</span>
            </td>
            ${canEdit &&
            html`<td class="row-actions">
              <button type="button" class="danger-outline" aria-label=${`Unregister ${peer.name}`}
                onClick=${() => setLeaving(peer)}>Unregister</button>
            </td>`}
          </tr>`;
        })}
      </tbody>
    </table>
    ${leaving &&
    html`<${Confirm} title=${`Unregister ${leaving.name}?`} confirmLabel="Unregister" danger
      action=${async () => {
        await api.del(`/api/admin/registered_ods/${leaving.id}`);
        onChanged();
      }}
      onClose=${() => setLeaving(null)}>
      <p>
        This server forgets <strong>${leaving.name}</strong> (${leaving.url}), and tells it to
        forget this one. New packages stop flowing between the two; packages already copied stay.
      </p>
    <//>`}
  </div>`;
}
