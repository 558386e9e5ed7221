// Events tab: the event log, with new events arriving live.

import { html, useContext, useEffect, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { Badge, Empty, ErrorBanner, Field, Live, Loading, Time, useApi } from './ui.js';

function tone(kind) {
  if (/failed|unreachable|conflict|deleted|revoked/.test(kind)) return 'bad';
  if (/available|reachable|registered|uploaded/.test(kind)) return 'ok';
  return 'neutral';
}

export function useLiveState() {
  const live = useContext(Live);
  const [snapshot, setSnapshot] = useState({ events: [], state: 'connecting' });
  useEffect(() => (live ? live.watch(setSnapshot) : undefined), [live]);
  return snapshot;
}

export function LiveIndicator() {
  const { state } = useLiveState();
  const words = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', stopped: 'Offline' };
  return html`<span class=${`live live-${state}`} role="status" title="Event stream">
    <i aria-hidden="true"></i>${words[state] || state}
  </span>`;
}

// One data value as text: what the API sent, in words where JSON has symbols.
function dataValue(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// The event's message; with data, a disclosure showing each field (its description on hover).
function EventMessage({ event, kind }) {
  const names = Object.keys(event.data || {});
  if (!names.length) return html`<span class="event-message">${event.message}</span>`;
  const fields = kind ? kind.fields : [];
  const described = Object.fromEntries(fields.map((field) => [field.name, field.description]));
  return html`<details class="event-message">
    <summary>${event.message}</summary>
    <dl class="properties compact event-data" aria-label="Event data">
      ${names.map(
        (name) => html`<dt title=${described[name] || ''}>${name}</dt><dd>${dataValue(event.data[name])}</dd>`,
      )}
    </dl>
  </details>`;
}

export function EventsTab() {
  const { events: live } = useLiveState();
  const [kind, setKind] = useState('');
  const [limit, setLimit] = useState(100);
  const catalogue = useApi(() => api.get('/api/admin/events/kinds'), []);
  const base = useApi(() => {
    const params = new URLSearchParams({ limit: String(limit) });
    if (kind) params.set('kind', kind);
    return api.get(`/api/admin/events?${params}`);
  }, [kind, limit]);

  const kinds = catalogue.data ? catalogue.data.items : [];
  const byKind = Object.fromEntries(kinds.map((item) => [item.kind, item]));
  const fetched = base.data ? base.data.items : [];
  const newest = fetched.length ? fetched[0].id : 0;
  const fresh = live.filter((event) => event.id > newest && (!kind || event.kind === kind));
  const shown = [...fresh, ...fetched];

  return html`<section class="card" aria-labelledby="events-title">
    <header class="card-header">
      <h2 id="events-title">Events</h2>
      <${LiveIndicator} />
    </header>
    <div class="toolbar toolbar-narrow">
      <${Field} id="events-kind" label="Kind" hint=${kind && byKind[kind] ? byKind[kind].description : ''}>
        <select id="events-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}>
          <option value="">All kinds</option>
          ${kinds.map((item) => html`<option value=${item.kind} title=${item.description}>${item.kind}</option>`)}
        </select>
      <//>
    </div>
    <${ErrorBanner} error=${catalogue.error || base.error} />
    ${!base.data && base.loading && html`<${Loading} />`}
    ${base.data &&
    !shown.length &&
    html`<${Empty} title=${kind ? `No ${kind} events` : 'No events yet'}>
      Uploads, deletions, stage changes, replication, registrations and account changes appear
      here as they happen.
    <//>`}
    ${shown.length > 0 &&
    html`<ol class="events" aria-label="Events, newest first" aria-live="polite">
      ${shown.map(
        (event) => html`<li key=${event.id} class="event">
          <${Time} iso=${event.created} />
          <${Badge} kind=${tone(event.kind)}>${event.kind}<//>
          <${EventMessage} event=${event} kind=${byKind[event.kind]} />
          ${event.actor && html`<span class="muted small">by ${event.actor}</span>`}
        </li>`,
      )}
    </ol>`}
    ${base.data &&
    fetched.length >= limit &&
    limit < 1000 &&
    html`<button type="button" onClick=${() => setLimit(1000)}>Show up to 1000 events</button>`}
  </section>`;
}
