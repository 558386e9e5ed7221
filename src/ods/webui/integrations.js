// Admin tab, Integrations: package records in Jamf Pro (settings, check, last sync, drift).

import { html, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  Badge,
  Banner,
  ErrorBanner,
  Field,
  Loading,
  Modal,
  ModalForm,
  STAGES,
  Time,
  useApi,
  useEvents,
  useSubmit,
} from './ui.js';


export function IntegrationsCard() {
  const { data, error, reload } = useApi(() => api.get('/api/admin/integrations/jamf'), []);
  const [editing, setEditing] = useState(false);
  useEvents(['jamf.'], reload);

  return html`<section class="card" aria-labelledby="integrations-title">
    <header class="card-header">
      <h2 id="integrations-title">Integrations</h2>
      <button type="button" onClick=${() => setEditing(true)}>
        ${data && data.configured ? 'Edit Jamf Pro' : 'Set up Jamf Pro'}
      </button>
    </header>
    <${ErrorBanner} error=${error} />
    ${!data && !error && html`<${Loading} />`}
    ${data && html`<${JamfSummary} jamf=${data} />`}
    ${data && data.configured && html`<${JamfActions} />`}
    ${editing &&
    html`<${EditJamf} jamf=${data} onClose=${() => setEditing(false)} onSaved=${reload} />`}
  </section>`;
}

function JamfSummary({ jamf }) {
  if (!jamf.configured) {
    return html`<p class="muted">
      Jamf Pro package records are not set up. With them, every package Public here at the
      stages you choose gets a record in Jamf Pro, with its SHA-512.
    </p>`;
  }
  const outcome = jamf.last_outcome;
  return html`<dl class="properties" data-testid="jamf-summary">
    <dt>Jamf Pro</dt>
    <dd><code>${jamf.url}</code> ${!jamf.enabled && html`<${Badge} kind="warn">disabled<//>`}</dd>
    <dt>API client</dt>
    <dd><code>${jamf.client_id}</code></dd>
    <dt>Stages</dt>
    <dd>${jamf.stages.join(', ') || html`<span class="muted">none</span>`}</dd>
    <dt>Category</dt>
    <dd>${jamf.category || html`<span class="muted">none</span>`}</dd>
    <dt>Records</dt>
    <dd>${jamf.records}</dd>
    <dt>Last sync</dt>
    <dd data-testid="jamf-last-sync">
      ${jamf.last_sync
        ? html`<${Time} iso=${jamf.last_sync} relative=${true} />
            <${Badge} kind=${outcome === 'ok' ? 'ok' : 'bad'}>${outcome}<//>
            ${jamf.last_error && html`<span class="muted small"> ${jamf.last_error}</span>`}`
        : html`<span class="muted">not yet</span>`}
    </dd>
  </dl>`;
}

function JamfActions() {
  const [check, setCheck] = useState(null);
  const [drift, setDrift] = useState(null);
  const checking = useSubmit(async () => {
    setCheck(await api.post('/api/admin/integrations/jamf/check'));
  });
  const comparing = useSubmit(async () => {
    setDrift(await api.post('/api/admin/integrations/jamf/reconcile', { repair: false }));
  });
  const repairing = useSubmit(async () => {
    setDrift(await api.post('/api/admin/integrations/jamf/reconcile', { repair: true }));
  });
  const drifted = drift && drift.missing.length + drift.stale.length + drift.orphaned.length > 0;
  return html`<div class="stack">
    <div class="actions">
      <button type="button" onClick=${checking.submit} disabled=${checking.busy}>
        ${checking.busy ? 'Checking…' : 'Check credentials'}
      </button>
      <button type="button" onClick=${comparing.submit} disabled=${comparing.busy}>
        ${comparing.busy ? 'Comparing…' : 'Find drift'}
      </button>
    </div>
    <${ErrorBanner} error=${checking.error || comparing.error || repairing.error} />
    ${check &&
    html`<${Banner} kind=${check.ok ? 'success' : 'error'}>
      <span data-testid="jamf-check">${check.message}</span>
    <//>`}
    ${drift &&
    html`<div data-testid="jamf-drift">
      ${drift.repaired && html`<p>Repaired.</p>`}
      ${!drifted && !drift.repaired && html`<p>No drift: Jamf Pro has a record of every package.</p>`}
      ${drift.missing.length > 0 && html`<p>No record: ${drift.missing.join(', ')}</p>`}
      ${drift.stale.length > 0 && html`<p>Other checksum: ${drift.stale.join(', ')}</p>`}
      ${drift.orphaned.length > 0 &&
      html`<p>Package gone: ${drift.orphaned.map((o) => `${o.filename} (id ${o.jamf_id})`).join(', ')}</p>`}
      ${drift.errors.map((text) => html`<p class="muted small">${text}</p>`)}
      ${drifted && !drift.repaired &&
      html`<button type="button" class="primary" onClick=${repairing.submit}
        disabled=${repairing.busy}>${repairing.busy ? 'Repairing…' : 'Repair drift'}</button>`}
    </div>`}
  </div>`;
}

function EditJamf({ jamf, onClose, onSaved }) {
  const configured = jamf && jamf.configured;
  const [url, setUrl] = useState(configured ? jamf.url : '');
  const [clientId, setClientId] = useState(configured ? jamf.client_id : '');
  const [secret, setSecret] = useState('');
  const [stages, setStages] = useState(configured ? jamf.stages : ['Prod']);
  const [category, setCategory] = useState(configured ? jamf.category || '' : '');
  const [enabled, setEnabled] = useState(configured ? jamf.enabled : true);
  const { submit, busy, error } = useSubmit(async () => {
    const body = { url, client_id: clientId, stages, category: category || null, enabled };
    if (secret) body.client_secret = secret;
    await api.put('/api/admin/integrations/jamf', body);
    onSaved();
    onClose();
  });
  const toggle = (stage) =>
    setStages(stages.includes(stage) ? stages.filter((s) => s !== stage) : [...stages, stage]);

  return html`<${Modal} title="Jamf Pro package records" onClose=${onClose}>
    <${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy} label="Save">
      <${Field} id="jamf-url" label="Jamf Pro URL" hint="Like https://example.jamfcloud.com">
        <input id="jamf-url" type="url" value=${url} required autofocus
          onInput=${(e) => setUrl(e.target.value)} />
      <//>
      <${Field} id="jamf-client-id" label="API client ID">
        <input id="jamf-client-id" value=${clientId} required
          onInput=${(e) => setClientId(e.target.value)} />
      <//>
      <${Field} id="jamf-client-secret" label="Client secret"
        hint=${configured ? 'Leave empty to keep the stored secret.' : 'Stored encrypted; never shown.'}>
        <input id="jamf-client-secret" type="password" value=${secret} required=${!configured}
          autocomplete="off" onInput=${(e) => setSecret(e.target.value)} />
      <//>
      <fieldset class="choices">
        <legend>Stages whose packages get a record</legend>
        ${STAGES.map(
          (stage) => html`<div class="field checkbox">
            <input id=${`jamf-stage-${stage}`} type="checkbox" checked=${stages.includes(stage)}
              onChange=${() => toggle(stage)} />
            <label for=${`jamf-stage-${stage}`}>${stage}</label>
          </div>`,
        )}
      </fieldset>
      <${Field} id="jamf-category" label="Category" hint="A Jamf Pro category by name; empty: none.">
        <input id="jamf-category" value=${category} onInput=${(e) => setCategory(e.target.value)} />
      <//>
      <div class="field checkbox">
        <input id="jamf-enabled" type="checkbox" checked=${enabled}
          onChange=${(e) => setEnabled(e.target.checked)} />
        <label for="jamf-enabled">Enabled</label>
      </div>
    <//>
  <//>`;
}
