// Webhooks card (Notifications tab): list, add, edit, delete, send a test, and
// each webhook's delivery log with redelivery.

import { html, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  Badge,
  Banner,
  Confirm,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Modal,
  ModalForm,
  Time,
  useApi,
  useEvents,
  useSubmit,
} from './ui.js';
import {
  DeliveryStatus,
  EventPicker,
  EventsText,
  LOG_SECONDS,
  PAGE_SIZE,
  Pager,
  chosenEvents,
} from './notify.js';

const LAST_SECONDS = 10;

const FORMATS = [
  ['ods', 'ODS (signed JSON)'],
  ['slack', 'Slack'],
  ['teams', 'Microsoft Teams'],
];

function formatName(format) {
  const found = FORMATS.find(([value]) => value === format);
  return found ? found[1] : format;
}

// One delivery's outcome in words: "delivered · HTTP 200 · 12 ms".
export function outcome(delivery) {
  const parts = [delivery.status];
  if (delivery.response_status !== null) parts.push(`HTTP ${delivery.response_status}`);
  if (delivery.duration_ms !== null) parts.push(`${delivery.duration_ms} ms`);
  if (delivery.error) parts.push(delivery.error);
  return parts.join(' · ');
}

export function Webhooks({ kinds }) {
  const hooks = useApi(() => api.get('/api/admin/webhooks'), []);
  // A receiver answering 410 disables its webhook.
  useEvents(['webhook.'], () => hooks.reload());
  const [dialog, setDialog] = useState(null);
  const [tested, setTested] = useState(null);
  const [version, setVersion] = useState(0);
  const items = hooks.data ? hooks.data.items : [];

  const [testing, setTesting] = useState(null);
  const [testError, setTestError] = useState(null);
  const test = async (hook) => {
    setTesting(hook.id);
    setTested(null);
    setTestError(null);
    try {
      setTested({ hook, delivery: await api.post(`/api/admin/webhooks/${hook.id}/test`) });
    } catch (failure) {
      setTestError(failure);
    } finally {
      setTesting(null);
      setVersion((old) => old + 1);
    }
  };

  return html`<section class="card" aria-labelledby="webhooks-title">
    <header class="card-header">
      <h2 id="webhooks-title">Webhooks</h2>
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Add webhook</button>
    </header>
    <p class="hint">
      Events are posted to each webhook as they happen: signed JSON for your own tools, or a line
      for a Slack or Teams channel. An answer other than 2xx is tried again for 24 hours.
    </p>
    <${ErrorBanner} error=${hooks.error} />
    <${ErrorBanner} error=${testError} onClose=${() => setTestError(null)} />
    ${testing !== null && html`<${Loading} label="Sending a test…" />`}
    ${tested &&
    html`<${Banner} kind=${tested.delivery.status === 'delivered' ? 'success' : 'error'} onClose=${() => setTested(null)}>
      Test to ${tested.hook.url}: ${outcome(tested.delivery)}
    <//>`}
    ${!hooks.data && hooks.loading && html`<${Loading} />`}
    ${hooks.data && !items.length && html`<${Empty} title="No webhooks">Add one to have events posted to it.<//>`}
    ${items.length > 0 &&
    html`<div class="table-wrap">
      <table class="responsive">
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Format</th>
            <th scope="col">Events</th>
            <th scope="col">Enabled</th>
            <th scope="col">Last delivery</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${items.map(
            (hook) => html`<tr key=${hook.id} data-url=${hook.url}>
              <td data-label="URL" class="url-cell">${hook.url}</td>
              <td data-label="Format">${formatName(hook.format)}</td>
              <td data-label="Events"><${EventsText} events=${hook.events} /></td>
              <td data-label="Enabled">
                ${hook.enabled
                  ? html`<${Badge} kind="ok">enabled<//>`
                  : html`<${Badge} kind="warn">disabled<//>`}
                ${hook.disabled_reason && html`<p class="hint">${hook.disabled_reason}</p>`}
              </td>
              <td data-label="Last delivery"><${LastDelivery} hook=${hook} version=${version} /></td>
              <td class="row-actions">
                <button type="button" aria-label=${`Send test to ${hook.url}`} disabled=${testing !== null}
                  onClick=${() => test(hook)}>Send test</button>
                <button type="button" aria-label=${`Deliveries of ${hook.url}`}
                  onClick=${() => setDialog({ kind: 'log', hook })}>Deliveries</button>
                <button type="button" aria-label=${`Edit ${hook.url}`}
                  onClick=${() => setDialog({ kind: 'edit', hook })}>Edit</button>
                <button type="button" class="danger-outline" aria-label=${`Delete ${hook.url}`}
                  onClick=${() => setDialog({ kind: 'delete', hook })}>Delete</button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
    ${dialog && dialog.kind === 'create' &&
    html`<${WebhookDialog} kinds=${kinds} onClose=${() => setDialog(null)} onSaved=${hooks.reload} />`}
    ${dialog && dialog.kind === 'edit' &&
    html`<${WebhookDialog} kinds=${kinds} id=${dialog.hook.id} onClose=${() => setDialog(null)}
      onSaved=${hooks.reload} />`}
    ${dialog && dialog.kind === 'log' &&
    html`<${DeliveryLog} hook=${dialog.hook} onClose=${() => {
      setDialog(null);
      setVersion((old) => old + 1);
    }} />`}
    ${dialog && dialog.kind === 'delete' &&
    html`<${Confirm} title="Delete this webhook?" confirmLabel="Delete" danger
      action=${async () => {
        await api.del(`/api/admin/webhooks/${dialog.hook.id}`);
        hooks.reload();
      }}
      onClose=${() => setDialog(null)}>
      <p>Nothing more is posted to <code>${dialog.hook.url}</code>; its delivery log goes too.</p>
    <//>`}
  </section>`;
}

function LastDelivery({ hook, version }) {
  // Deliveries record no events to follow: looked at again now and then.
  const last = useApi(
    () => api.get(`/api/admin/webhooks/${hook.id}/deliveries?limit=1`),
    [hook.id, version],
    LAST_SECONDS,
  );
  if (last.error) return html`<span class="error-text">${last.error.message}</span>`;
  if (!last.data) return html`<span class="muted">…</span>`;
  const [delivery] = last.data.items;
  if (!delivery) return html`<span class="muted">none yet</span>`;
  return html`<span title=${outcome(delivery)}>
    <${DeliveryStatus} status=${delivery.status} />
    ${delivery.response_status !== null && html` <span class="small">HTTP ${delivery.response_status}</span>`}
    <span class="muted small"> <${Time} iso=${delivery.created} relative /></span>
  </span>`;
}

// Add (no id) or edit (loads the webhook first, as it stands now).
function WebhookDialog({ kinds, id = null, onClose, onSaved }) {
  const loaded = useApi(() => (id === null ? Promise.resolve(null) : api.get(`/api/admin/webhooks/${id}`)), [id]);
  const ready = id === null || loaded.data;
  return html`<${Modal} title=${id === null ? 'Add webhook' : 'Edit webhook'} onClose=${onClose} wide>
    ${!ready &&
    html`<div class="modal-body">
      ${loaded.error ? html`<${ErrorBanner} error=${loaded.error} />` : html`<${Loading} />`}
    </div>`}
    ${ready && html`<${WebhookForm} kinds=${kinds} hook=${loaded.data} onClose=${onClose} onSaved=${onSaved} />`}
  <//>`;
}

function WebhookForm({ kinds, hook, onClose, onSaved }) {
  const [url, setUrl] = useState(hook ? hook.url : '');
  const [secret, setSecret] = useState('');
  const [format, setFormat] = useState(hook ? hook.format : 'ods');
  const [every, setEvery] = useState(hook ? !hook.events.length : true);
  const [chosen, setChosen] = useState(hook ? hook.events : []);
  const [enabled, setEnabled] = useState(hook ? hook.enabled : true);
  const { submit, busy, error } = useSubmit(async () => {
    const events = chosenEvents(every, chosen);
    if (hook) {
      // The secret is write-only: left empty, the one stored stays.
      const body = { url, format, events, enabled };
      if (secret) body.secret = secret;
      await api.patch(`/api/admin/webhooks/${hook.id}`, body);
    } else {
      await api.post('/api/admin/webhooks', { url, secret, events, format, enabled });
    }
    onSaved();
    onClose();
  });
  const secretHint = hook
    ? `Leave empty to keep the ${hook.has_secret ? 'secret set now' : 'webhook unsigned'}.`
    : 'Signs ODS deliveries (X-ODS-Signature-256); required for them. Not shown again.';
  return html`<${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy}
    label=${hook ? 'Save' : 'Add webhook'}>
    <${Field} id="webhook-url" label="URL" hint="Where events are posted: http:// or https://.">
      <input id="webhook-url" type="url" required maxlength="2048" value=${url}
        onInput=${(e) => setUrl(e.target.value)} />
    <//>
    <${Field} id="webhook-format" label="Format">
      <select id="webhook-format" value=${format} onChange=${(e) => setFormat(e.target.value)}>
        ${FORMATS.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
      </select>
    <//>
    <${Field} id="webhook-secret" label="Secret" hint=${secretHint}>
      <input id="webhook-secret" type="password" autocomplete="new-password" maxlength="512"
        value=${secret} onInput=${(e) => setSecret(e.target.value)} />
    <//>
    <${EventPicker} idPrefix="webhook" kinds=${kinds} every=${every} chosen=${chosen}
      onEvery=${setEvery} onChosen=${setChosen} />
    <div class="field checkbox">
      <input id="webhook-enabled" type="checkbox" checked=${enabled}
        onChange=${(e) => setEnabled(e.target.checked)} />
      <label for="webhook-enabled">Enabled</label>
      <p class="hint">Enabled again, a webhook gets the events from then on, not those it missed.</p>
    </div>
  <//>`;
}

function DeliveryLog({ hook, onClose }) {
  const [offset, setOffset] = useState(0);
  const [notice, setNotice] = useState(null);
  const log = useApi(
    () => api.get(`/api/admin/webhooks/${hook.id}/deliveries?limit=${PAGE_SIZE}&offset=${offset}`),
    [hook.id, offset],
    LOG_SECONDS,
  );
  const [redelivering, setRedelivering] = useState(null);
  const [error, setError] = useState(null);
  const redeliver = async (delivery) => {
    setRedelivering(delivery.id);
    setError(null);
    try {
      const again = await api.post(`/api/admin/webhooks/${hook.id}/deliveries/${delivery.id}/redeliver`);
      setNotice({ id: delivery.id, queued: again.id });
      setOffset(0);
      log.reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setRedelivering(null);
    }
  };
  const items = log.data ? log.data.items : [];
  return html`<${Modal} title=${`Deliveries to ${hook.url}`} onClose=${onClose} wide>
    <div class="modal-body stack">
      <${ErrorBanner} error=${log.error || error} onClose=${error ? () => setError(null) : undefined} />
      ${notice &&
      html`<${Banner} kind="success" onClose=${() => setNotice(null)}>
        Delivery ${notice.id} sent again as delivery ${notice.queued}.
      <//>`}
      ${!log.data && log.loading && html`<${Loading} />`}
      ${log.data && !items.length && html`<${Empty} title="No deliveries yet">Send a test to make one.<//>`}
      ${items.length > 0 &&
      html`<div class="table-wrap">
        <table class="responsive deliveries" aria-label="Deliveries, newest first">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Event</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Answer</th>
              <th scope="col">Took</th>
              <th scope="col">Error</th>
              <th scope="col">Created</th>
              <th scope="col">Next attempt</th>
              <th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            ${items.map(
              (delivery) => html`<tr key=${delivery.id} data-delivery=${delivery.id}>
                <td data-label="Id">${delivery.id}</td>
                <td data-label="Event">${delivery.event}</td>
                <td data-label="Status" class="nowrap"><${DeliveryStatus} status=${delivery.status} /></td>
                <td data-label="Attempts">${delivery.attempts}</td>
                <td data-label="Answer" class="nowrap">${delivery.response_status === null ? '–' : `HTTP ${delivery.response_status}`}</td>
                <td data-label="Took" class="nowrap">${delivery.duration_ms === null ? '–' : `${delivery.duration_ms} ms`}</td>
                <td data-label="Error" class="wrap">${delivery.error || html`<span class="muted">–</span>`}</td>
                <td data-label="Created"><${Time} iso=${delivery.created} /></td>
                <td data-label="Next attempt"><${Time} iso=${delivery.next_attempt} /></td>
                <td class="row-actions">
                  <button type="button" aria-label=${`Redeliver delivery ${delivery.id}`}
                    disabled=${redelivering !== null} onClick=${() => redeliver(delivery)}>Redeliver</button>
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>`}
      ${log.data && html`<${Pager} offset=${offset} total=${log.data.total} count=${items.length} onOffset=${setOffset} />`}
      <p class="hint">Newest first, refreshed every ${LOG_SECONDS} s. A redelivery sends the same event again as a new delivery.</p>
    </div>
    <footer class="modal-footer">
      <button type="button" onClick=${onClose}>Close</button>
    </footer>
  <//>`;
}
