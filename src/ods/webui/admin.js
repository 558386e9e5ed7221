// Admin tab: this server's settings and identity, and live system figures.

import { html, useContext, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { IntegrationsCard } from './integrations.js';
import {
  About,
  Banner,
  CopyButton,
  ErrorBanner,
  Field,
  Loading,
  Meter,
  Modal,
  ModalForm,
  STAGES,
  StageBadge,
  can,
  useApi,
  useMe,
  useSubmit,
} from './ui.js';

const SYSTEM_SECONDS = 3;

export function AdminTab() {
  const me = useMe();
  return html`<div class="grid-2">
    <${Settings} />
    <${SystemCard} />
    ${can(me, 'admin') && html`<${IntegrationsCard} />`}
  </div>`;
}

function Settings() {
  const me = useMe();
  const { about, error, reload } = useContext(About);
  const [editing, setEditing] = useState(false);
  const [showKey, setShowKey] = useState(false);
  const isAdmin = can(me, 'admin');

  if (!about) {
    return html`<section class="card" aria-labelledby="settings-title">
      <h2 id="settings-title">Server settings</h2>
      ${error ? html`<${ErrorBanner} error=${error} />` : html`<${Loading} />`}
    </section>`;
  }
  const missing = [!about.name && 'name', !about.url && 'URL'].filter(Boolean);
  return html`<section class="card" aria-labelledby="settings-title">
    <header class="card-header">
      <h2 id="settings-title">Server settings</h2>
      ${isAdmin && html`<button type="button" onClick=${() => setEditing(true)}>Edit</button>`}
    </header>
    ${missing.length > 0 &&
    html`<${Banner} kind="warning">
      ${`This server has no ${missing.join(' and no ')} yet. Set ${missing.length > 1 ? 'them' : 'it'} `}
      before registering it with other servers: they reach this one at its URL.
    <//>`}
    <dl class="properties">
      <dt>Name</dt>
      <dd>${about.name || html`<span class="muted">not set</span>`}</dd>
      <dt>URL</dt>
      <dd>${about.url || html`<span class="muted">not set</span>`}</dd>
      <dt>Stage</dt>
      <dd><${StageBadge} stage=${about.stage} /></dd>
      <dt>Firewalled mode</dt>
      <dd>
        ${about.firewalled_mode ? 'Enabled' : 'Disabled'}
        <span class="muted small">
          ${about.firewalled_mode
            ? ' — peers do not push here; this server polls them.'
            : ' — peers push new packages here.'}
        </span>
      </dd>
      <dt>ISS ID</dt>
      <dd class="secret">
        <code>${about.iss}</code><${CopyButton} value=${about.iss} label="Copy ISS ID" />
      </dd>
      <dt>Key</dt>
      <dd class="secret">
        ${about.key
          ? html`<code>${showKey ? about.key : '•'.repeat(24)}</code>
              <button type="button" class="copy" aria-pressed=${showKey}
                onClick=${() => setShowKey(!showKey)}>${showKey ? 'Hide' : 'Show'}</button>
              <${CopyButton} value=${about.key} label="Copy key" />`
          : html`<span class="muted">shown to admins only</span>`}
      </dd>
    </dl>
    <p class="hint">
      Another server registers with this one using its URL, ISS ID and key (Network tab there).
    </p>
    ${editing &&
    html`<${EditSettings} about=${about} onClose=${() => setEditing(false)} onSaved=${reload} />`}
  </section>`;
}

function EditSettings({ about, onClose, onSaved }) {
  const [name, setName] = useState(about.name);
  const [url, setUrl] = useState(about.url);
  const [stage, setStage] = useState(about.stage);
  const [firewalled, setFirewalled] = useState(about.firewalled_mode);
  const { submit, busy, error } = useSubmit(async () => {
    await api.post('/api/admin/about/update', {
      name,
      url,
      firewalled_mode: firewalled ? 'Enabled' : 'Disabled',
      stage,
    });
    onSaved();
    onClose();
  });

  return html`<${Modal} title="Edit server settings" onClose=${onClose}>
    <${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy} label="Save">
      <${Field} id="settings-name" label="Name" hint="How other servers and admins call this one.">
        <input id="settings-name" value=${name} maxlength="255" autofocus
          onInput=${(e) => setName(e.target.value)} />
      <//>
      <${Field} id="settings-url" label="URL" hint="How peers reach this server: http:// or https://.">
        <input id="settings-url" type="url" value=${url} placeholder=${window.location.origin}
          onInput=${(e) => setUrl(e.target.value)} />
      <//>
      <${Field} id="settings-stage" label="Stage"
        hint="This server takes packages of its stage and above (Dev < Test < Prod).">
        <select id="settings-stage" value=${stage} onChange=${(e) => setStage(e.target.value)}>
          ${STAGES.map((value) => html`<option value=${value}>${value}</option>`)}
        </select>
      <//>
      <div class="field checkbox">
        <input id="settings-firewalled" type="checkbox" checked=${firewalled}
          onChange=${(e) => setFirewalled(e.target.checked)} />
        <label for="settings-firewalled">Firewalled mode</label>
        <p class="hint">Peers cannot reach this server; it polls them for new packages instead.</p>
      </div>
    <//>
  <//>`;
}

function SystemCard() {
  const { data, error, loading } = useApi(() => api.get('/api/admin/system'), [], SYSTEM_SECONDS);
  return html`<section class="card" aria-labelledby="system-title">
    <header class="card-header">
      <h2 id="system-title">System</h2>
      <span class="muted small" aria-live="off">refreshed every ${SYSTEM_SECONDS} s</span>
    </header>
    <${ErrorBanner} error=${error} />
    ${!data && loading && html`<${Loading} />`}
    ${data &&
    html`<div class="stack">
      <${Meter} label="Disk (data dir)" used=${data.disk_used} total=${data.disk_total}
        text=${`${data.disk_used_hr} used of ${data.disk_total_hr} · ${data.disk_free_hr} free`} />
      <${Meter} label="Memory" used=${data.mem_used} total=${data.mem_total}
        text=${`${data.mem_used_hr} used of ${data.mem_total_hr} · ${data.mem_available_hr} available`} />
      <dl class="properties compact">
        <dt>CPUs</dt>
        <dd>${data.cpu_count}</dd>
        <dt>Network received</dt>
        <dd>${data.network_bytes_received_hr}</dd>
        <dt>Network sent</dt>
        <dd>${data.network_bytes_sent_hr}</dd>
        <dt>Uptime</dt>
        <dd>${data.uptime_hr}</dd>
      </dl>
    </div>`}
  </section>`;
}
