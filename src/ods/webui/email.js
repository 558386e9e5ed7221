// Email subscriptions card (Notifications tab): list, add, edit, delete, send a
// test mail, and each subscription's mail log.

import { html, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
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

function digestText(minutes) {
  if (!minutes) return 'one mail per event';
  return minutes === 1 ? 'a digest every minute' : `a digest every ${minutes} minutes`;
}

function mailOutcome(delivery) {
  return delivery.error ? `${delivery.status} · ${delivery.error}` : delivery.status;
}

export function EmailSubscriptions({ kinds }) {
  const subscriptions = useApi(() => api.get('/api/admin/email-subscriptions'), []);
  const [dialog, setDialog] = useState(null);
  const [testing, setTesting] = useState(null);
  const [tested, setTested] = useState(null);
  const [testError, setTestError] = useState(null);
  const items = subscriptions.data ? subscriptions.data.items : [];

  const test = async (subscription) => {
    setTesting(subscription.id);
    setTested(null);
    setTestError(null);
    try {
      const delivery = await api.post(`/api/admin/email-subscriptions/${subscription.id}/test`);
      setTested({ subscription, delivery });
    } catch (failure) {
      setTestError(failure);
    } finally {
      setTesting(null);
    }
  };

  return html`<section class="card" aria-labelledby="email-title">
    <header class="card-header">
      <h2 id="email-title">Email subscriptions</h2>
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Add subscription</button>
    </header>
    <p class="hint">
      Events are mailed one by one, or gathered into one digest mail per interval so that a busy
      mesh does not flood an inbox. The server's SMTP settings (ODS_SMTP_*) say how mail is sent.
    </p>
    <${ErrorBanner} error=${subscriptions.error} />
    <${ErrorBanner} error=${testError} onClose=${() => setTestError(null)} />
    ${testing !== null && html`<${Loading} label="Sending a test mail…" />`}
    ${tested &&
    html`<${Banner} kind=${tested.delivery.status === 'delivered' ? 'success' : 'error'} onClose=${() => setTested(null)}>
      Test mail to ${tested.subscription.address}: ${mailOutcome(tested.delivery)}
    <//>`}
    ${!subscriptions.data && subscriptions.loading && html`<${Loading} />`}
    ${subscriptions.data && !items.length &&
    html`<${Empty} title="No email subscriptions">Add one to have events mailed to an address.<//>`}
    ${items.length > 0 &&
    html`<div class="table-wrap">
      <table class="responsive">
        <thead>
          <tr>
            <th scope="col">Address</th>
            <th scope="col">Events</th>
            <th scope="col">Mails</th>
            <th scope="col">Created</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${items.map(
            (subscription) => html`<tr key=${subscription.id} data-address=${subscription.address}>
              <td data-label="Address"><strong>${subscription.address}</strong></td>
              <td data-label="Events"><${EventsText} events=${subscription.events} /></td>
              <td data-label="Mails">${digestText(subscription.digest_minutes)}</td>
              <td data-label="Created"><${Time} iso=${subscription.created} /></td>
              <td class="row-actions">
                <button type="button" aria-label=${`Send test mail to ${subscription.address}`}
                  disabled=${testing !== null} onClick=${() => test(subscription)}>Send test mail</button>
                <button type="button" aria-label=${`Mail log of ${subscription.address}`}
                  onClick=${() => setDialog({ kind: 'log', subscription })}>Mail log</button>
                <button type="button" aria-label=${`Edit ${subscription.address}`}
                  onClick=${() => setDialog({ kind: 'edit', subscription })}>Edit</button>
                <button type="button" class="danger-outline" aria-label=${`Delete ${subscription.address}`}
                  onClick=${() => setDialog({ kind: 'delete', subscription })}>Delete</button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
    ${dialog && dialog.kind === 'create' &&
    html`<${SubscriptionDialog} kinds=${kinds} onClose=${() => setDialog(null)} onSaved=${subscriptions.reload} />`}
    ${dialog && dialog.kind === 'edit' &&
    html`<${SubscriptionDialog} kinds=${kinds} id=${dialog.subscription.id} onClose=${() => setDialog(null)}
      onSaved=${subscriptions.reload} />`}
    ${dialog && dialog.kind === 'log' &&
    html`<${MailLog} subscription=${dialog.subscription} onClose=${() => setDialog(null)} />`}
    ${dialog && dialog.kind === 'delete' &&
    html`<${Confirm} title=${`Stop mailing ${dialog.subscription.address}?`} confirmLabel="Delete" danger
      action=${async () => {
        await api.del(`/api/admin/email-subscriptions/${dialog.subscription.id}`);
        subscriptions.reload();
      }}
      onClose=${() => setDialog(null)}>
      <p>No more mail goes to this address; mail not sent yet and the mail log go too.</p>
    <//>`}
  </section>`;
}

// Add (no id) or edit (loads the subscription first, as it stands now).
function SubscriptionDialog({ kinds, id = null, onClose, onSaved }) {
  const loaded = useApi(() => (id === null ? Promise.resolve(null) : api.get(`/api/admin/email-subscriptions/${id}`)), [id]);
  const title = id === null ? 'Add email subscription' : 'Edit email subscription';
  const ready = id === null || loaded.data;
  return html`<${Modal} title=${title} onClose=${onClose} wide>
    ${!ready &&
    html`<div class="modal-body">
      ${loaded.error ? html`<${ErrorBanner} error=${loaded.error} />` : html`<${Loading} />`}
    </div>`}
    ${ready && html`<${SubscriptionForm} kinds=${kinds} subscription=${loaded.data} onClose=${onClose} onSaved=${onSaved} />`}
  <//>`;
}

function SubscriptionForm({ kinds, subscription, onClose, onSaved }) {
  const [address, setAddress] = useState(subscription ? subscription.address : '');
  const [digest, setDigest] = useState(String(subscription ? subscription.digest_minutes : 0));
  const [every, setEvery] = useState(subscription ? !subscription.events.length : true);
  const [chosen, setChosen] = useState(subscription ? subscription.events : []);
  const { submit, busy, error } = useSubmit(async () => {
    const body = { address: address.trim(), events: chosenEvents(every, chosen), digest_minutes: Number(digest) };
    if (subscription) await api.patch(`/api/admin/email-subscriptions/${subscription.id}`, body);
    else await api.post('/api/admin/email-subscriptions', body);
    onSaved();
    onClose();
  });
  return html`<${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy}
    label=${subscription ? 'Save' : 'Add subscription'}>
    <${Field} id="email-address" label="Address" hint="One plain address, e.g. mac-admins@example.org.">
      <input id="email-address" type="email" required maxlength="254" autocomplete="off" value=${address}
        onInput=${(e) => setAddress(e.target.value)} />
    <//>
    <${Field} id="email-digest" label="Digest every (minutes)"
      hint="0: one mail per event. More: one mail per interval with the events of that interval.">
      <input id="email-digest" type="number" required min="0" max="10080" value=${digest}
        onInput=${(e) => setDigest(e.target.value)} />
    <//>
    <${EventPicker} idPrefix="email" kinds=${kinds} every=${every} chosen=${chosen}
      onEvery=${setEvery} onChosen=${setChosen} />
  <//>`;
}

function MailLog({ subscription, onClose }) {
  const [offset, setOffset] = useState(0);
  const log = useApi(
    () => api.get(`/api/admin/email-subscriptions/${subscription.id}/deliveries`),
    [subscription.id],
    LOG_SECONDS,
  );
  const all = log.data ? log.data.items : [];
  const items = all.slice(offset, offset + PAGE_SIZE);
  return html`<${Modal} title=${`Mail to ${subscription.address}`} onClose=${onClose} wide>
    <div class="modal-body stack">
      <${ErrorBanner} error=${log.error} />
      ${!log.data && log.loading && html`<${Loading} />`}
      ${log.data && !all.length && html`<${Empty} title="No mail yet">Send a test mail to make one.<//>`}
      ${items.length > 0 &&
      html`<div class="table-wrap">
        <table class="responsive deliveries" aria-label="Mails, newest first">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Event</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Error</th>
              <th scope="col">Created</th>
              <th scope="col">Next attempt</th>
              <th scope="col">Events</th>
            </tr>
          </thead>
          <tbody>
            ${items.map(
              (delivery) => html`<tr key=${delivery.id} data-delivery=${delivery.id}>
                <td data-label="Id">${delivery.id}</td>
                <td data-label="Event">${delivery.event}</td>
                <td data-label="Status" class="nowrap"><${DeliveryStatus} status=${delivery.status} /></td>
                <td data-label="Attempts">${delivery.attempts}</td>
                <td data-label="Error" class="wrap">${delivery.error || html`<span class="muted">–</span>`}</td>
                <td data-label="Created"><${Time} iso=${delivery.created} /></td>
                <td data-label="Next attempt"><${Time} iso=${delivery.next_attempt} /></td>
                <td data-label="Events" class="wrap" title="Ids in the Events tab">${delivery.events.length ? delivery.events.join(', ') : '–'}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>`}
      ${log.data && html`<${Pager} offset=${offset} total=${all.length} count=${items.length} onOffset=${setOffset} />`}
      ${log.data && log.data.total > all.length &&
      html`<p class="hint">The newest ${all.length} of ${log.data.total} mails.</p>`}
      <p class="hint">Newest first, refreshed every ${LOG_SECONDS} s. A mail that fails is tried again like a webhook.</p>
    </div>
    <footer class="modal-footer">
      <button type="button" onClick=${onClose}>Close</button>
    </footer>
  <//>`;
}
