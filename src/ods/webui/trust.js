// Trust card (Network tab): this server's signing key, whose packages it takes,
// and the other servers' keys pinned here. Also how the console names an
// origin server, for the Packages tab.

import { html, useContext, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  About,
  Confirm,
  CopyButton,
  Empty,
  ErrorBanner,
  Loading,
  Modal,
  ModalForm,
  Time,
  can,
  useApi,
  useEvents,
  useMe,
  useSubmit,
  when,
} from './ui.js';

const POLICY_WORDS = {
  any: 'Packages from any server of the mesh',
  listed: 'Packages only from listed origins',
};

const POLICY_MEANING = {
  any:
    'Packages, stage changes and deletes are taken when signed by any server whose key ' +
    'is pinned here.',
  listed:
    'Only those signed by this server or a listed origin are taken. Other servers can ' +
    'still pass the listed origins\' packages on; what they sign themselves is refused.',
};

// A server's name as the console knows it, or null: this server, or a
// registered peer with that iss.
export function serverName(iss, about, peers) {
  if (about && iss === about.iss) return `${about.name || 'This server'} (this server)`;
  const peer = (peers || []).find((item) => item.iss === iss);
  return peer ? peer.name : null;
}

// A server by name when known (its iss on hover), else by its iss.
export function ServerName({ iss, about, peers, name = null }) {
  const known = name || serverName(iss, about, peers);
  return known ? html`<span title=${iss}>${known}</span>` : html`<code>${iss}</code>`;
}

export function TrustCard({ peers }) {
  const me = useMe();
  const { about } = useContext(About);
  const trust = useApi(() => api.get('/api/admin/trust'), []);
  // Keys are pinned at registration and by statements; names follow the peers.
  useEvents(['trust.', 'peer.'], () => trust.reload());
  const [editing, setEditing] = useState(false);
  const [unpinning, setUnpinning] = useState(null);
  const isAdmin = can(me, 'admin');
  const data = trust.data;

  return html`<section class="card" aria-labelledby="trust-title">
    <header class="card-header">
      <h2 id="trust-title">Trust</h2>
      ${isAdmin && data && html`<button type="button" onClick=${() => setEditing(true)}>Edit policy</button>`}
    </header>
    <div class="stack">
      <p class="hint">
        Each server signs the packages uploaded to it and the stage changes and deletes its
        admins make. This server checks those signatures before it publishes, promotes or deletes
        anything.
      </p>
      <${ErrorBanner} error=${trust.error} />
      ${!data && trust.loading && html`<${Loading} />`}
      ${data && html`<${TrustDetails} trust=${data} about=${about} peers=${peers} canEdit=${isAdmin}
        onUnpin=${setUnpinning} />`}
    </div>
    ${editing &&
    html`<${EditTrust} trust=${data} about=${about} peers=${peers} onClose=${() => setEditing(false)}
      onSaved=${trust.reload} />`}
    ${unpinning &&
    html`<${Unpin} pinned=${unpinning} about=${about} peers=${peers}
      onClose=${() => setUnpinning(null)} onChanged=${trust.reload} />`}
  </section>`;
}

function TrustDetails({ trust, about, peers, canEdit, onUnpin }) {
  return html`<dl class="properties">
      <dt>Signing key</dt>
      <dd>
        <span class="secret">
          <code class="nowrap" title=${trust.public_key}>${trust.fingerprint}</code>
          <${CopyButton} value=${trust.fingerprint} label="Copy fingerprint" />
        </span>
        <span class="hint block">
          This server's fingerprint: the admins of other servers find the same one for it in
          their own Trust card.
        </span>
      </dd>
      <dt>Policy</dt>
      <dd>
        <strong>${POLICY_WORDS[trust.policy]}</strong>
        <span class="hint block">${POLICY_MEANING[trust.policy]}</span>
      </dd>
      ${trust.policy === 'listed' &&
      html`<dt>Listed origins</dt>
        <dd>
          ${trust.origins.length
            ? html`<ul class="origin-list">
                ${trust.origins.map(
                  (iss) => html`<li key=${iss}><${ServerName} iss=${iss} about=${about} peers=${peers} /></li>`,
                )}
              </ul>`
            : html`<span class="muted">None: only packages uploaded to this server.</span>`}
        </dd>`}
    </dl>
    <div>
      <h3 id="pinned-title">Pinned keys</h3>
      ${trust.keys.length
        ? html`<${PinnedKeys} keys=${trust.keys} about=${about} peers=${peers} canEdit=${canEdit}
            onUnpin=${onUnpin} />`
        : html`<${Empty} title="No keys pinned yet">
            Another server's key is pinned the first time this one sees it: when the two register,
            or with a package passed on by a peer.
          <//>`}
    </div>`;
}

function PinnedKeys({ keys, about, peers, canEdit, onUnpin }) {
  return html`<div class="table-wrap">
    <table class="responsive" aria-labelledby="pinned-title">
      <thead>
        <tr>
          <th scope="col">Server</th>
          <th scope="col">Fingerprint</th>
          <th scope="col">First seen</th>
          <th scope="col">Came through</th>
          ${canEdit && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
        </tr>
      </thead>
      <tbody>
        ${keys.map((pinned) => {
          const name = pinned.name || serverName(pinned.iss, about, peers);
          return html`<tr key=${pinned.iss}>
            <td data-label="Server">
              ${name
                ? html`<strong>${name}</strong><br /><code class="small">${pinned.iss}</code>`
                : html`<code>${pinned.iss}</code>`}
            </td>
            <td data-label="Fingerprint">
              <code class="nowrap" title=${pinned.public_key}>${pinned.fingerprint}</code>
            </td>
            <td data-label="First seen"><${Time} iso=${pinned.first_seen} /></td>
            <td data-label="Came through"><${CameThrough} pinned=${pinned} about=${about} peers=${peers} /></td>
            ${canEdit &&
            html`<td class="row-actions">
              <button type="button" class="danger-outline" aria-label=${`Unpin the key of ${name || pinned.iss}`}
                onClick=${() => onUnpin(pinned)}>Unpin</button>
            </td>`}
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}

function CameThrough({ pinned, about, peers }) {
  if (!pinned.via_iss) return html`<span class="muted">–</span>`;
  if (pinned.via_iss === pinned.iss) return 'the server itself';
  return html`<${ServerName} iss=${pinned.via_iss} about=${about} peers=${peers} />`;
}

function Unpin({ pinned, about, peers, onClose, onChanged }) {
  const name = pinned.name || serverName(pinned.iss, about, peers) || pinned.iss;
  return html`<${Confirm} title=${`Unpin the key of ${name}?`} confirmLabel="Unpin" danger
    action=${async () => {
      await api.del(`/api/admin/trust/keys/${pinned.iss}`);
      onChanged();
    }}
    onClose=${onClose}>
    <p>
      This server forgets the signing key <code class="nowrap">${pinned.fingerprint}</code> it
      pinned for <strong>${name}</strong> on ${when(pinned.first_seen)}. The next key seen for that server,
      from the server itself or passed on by a peer, is pinned in its place, and its packages are
      checked against that key from then on.
    </p>
    <p>
      Unpin only a server that really has a new key (reinstalled, or its database restored
      without its key). Check the new fingerprint with its admin first: they find it in the Trust
      card of its Network tab.
    </p>
  <//>`;
}

function EditTrust({ trust, about, peers, onClose, onSaved }) {
  const own = about ? about.iss : null;
  const registered = peers.filter((peer) => peer.iss !== own);
  const isRegistered = (iss) => registered.some((peer) => peer.iss === iss);
  const [policy, setPolicy] = useState(trust.policy);
  const [origins, setOrigins] = useState(trust.origins);
  // Origins that are not registered servers stay listed (ticked or not) while the dialog is open.
  const [others, setOthers] = useState(() =>
    trust.origins.filter((iss) => iss !== own && !isRegistered(iss)),
  );
  const [pasted, setPasted] = useState('');

  const clean = (text) => text.trim().toLowerCase();
  const add = () => {
    const iss = clean(pasted);
    setPasted('');
    if (!iss || iss === own) return;
    if (!origins.includes(iss)) setOrigins([...origins, iss]);
    if (!isRegistered(iss) && !others.includes(iss)) setOthers([...others, iss]);
  };
  const toggle = (iss, on) => setOrigins(on ? [...origins, iss] : origins.filter((item) => item !== iss));

  const { submit, busy, error } = useSubmit(async () => {
    // An iss pasted but not added yet counts too; the API checks each one.
    const extra = clean(pasted);
    const chosen = extra && extra !== own && !origins.includes(extra) ? [...origins, extra] : origins;
    await api.put('/api/admin/trust', {
      policy,
      origins: policy === 'listed' ? chosen : [],
    });
    onSaved();
    onClose();
  });

  return html`<${Modal} title="Edit the trust policy" onClose=${onClose}>
    <${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy} label="Save">
      <fieldset class="choices">
        <legend>Take packages, stage changes and deletes</legend>
        <div class="field checkbox">
          <input id="trust-any" type="radio" name="trust-policy" value="any"
            checked=${policy === 'any'} onChange=${() => setPolicy('any')} />
          <label for="trust-any">From any server of the mesh</label>
          <p class="hint">Signed by any server whose key is pinned here.</p>
        </div>
        <div class="field checkbox">
          <input id="trust-listed" type="radio" name="trust-policy" value="listed"
            checked=${policy === 'listed'} onChange=${() => setPolicy('listed')} />
          <label for="trust-listed">Only from listed origins</label>
          <p class="hint">
            Signed by this server or one ticked below. Other servers can still pass their packages
            on.
          </p>
        </div>
      </fieldset>
      ${policy === 'listed' &&
      html`<fieldset class="choices">
        <legend>Listed origins</legend>
        <div class="field checkbox">
          <input id="trust-origin-self" type="checkbox" checked disabled />
          <label for="trust-origin-self">${serverName(own, about, peers) || 'This server'}</label>
          <p class="hint">Always: what is uploaded here.</p>
        </div>
        ${registered.map(
          (peer) => html`<div class="field checkbox" key=${peer.iss}>
            <input id=${`trust-origin-${peer.iss}`} type="checkbox" checked=${origins.includes(peer.iss)}
              onChange=${(e) => toggle(peer.iss, e.target.checked)} />
            <label for=${`trust-origin-${peer.iss}`}>${peer.name}</label>
            <p class="hint"><code>${peer.iss}</code></p>
          </div>`,
        )}
        ${others.map(
          (iss) => html`<div class="field checkbox" key=${iss}>
            <input id=${`trust-origin-${iss}`} type="checkbox" checked=${origins.includes(iss)}
              onChange=${(e) => toggle(iss, e.target.checked)} />
            <label for=${`trust-origin-${iss}`}><code>${iss}</code></label>
            <p class="hint">Not registered here: its packages come through a peer.</p>
          </div>`,
        )}
        <div class="field">
          <label for="trust-paste">Another origin's ISS ID</label>
          <div class="input-with-button">
            <input id="trust-paste" spellcheck="false" autocomplete="off" value=${pasted}
              aria-describedby="trust-paste-hint"
              onInput=${(e) => setPasted(e.target.value)}
              onKeyDown=${(e) => {
                if (e.key === 'Enter') {
                  e.preventDefault();
                  add();
                }
              }} />
            <button type="button" onClick=${add} disabled=${!clean(pasted)}>Add</button>
          </div>
          <p class="hint" id="trust-paste-hint">
            32 hex characters, from that server's Admin tab: a server not registered here whose
            packages reach this one through a peer.
          </p>
        </div>
      </fieldset>`}
    <//>
  <//>`;
}
