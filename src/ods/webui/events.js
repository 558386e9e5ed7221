// Events tab: the event log, with new events arriving live.

import { html, useContext, useEffect, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { Badge, Empty, ErrorBanner, Field, Live, Loading, Time, useApi } from './ui.js';

const KINDS = [
  'package.uploaded',
  'package.replaced',
  'package.available',
  'package.downloading',
  'package.stage_changed',
  'package.deleted',
  'package.failed',
  'package.conflict',
  'peer.registered',
  'peer.unregistered',
  'peer.reachable',
  'peer.unreachable',
  'server.updated',
  'user.created',
  'user.updated',
  'user.deleted',
  'user.password_changed',
  'token.created',
  'token.revoked',
  'login.failed',
];

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

export function EventsTab() {
  const { events: live } = useLiveState();
  const [kind, setKind] = useState('');
  const [limit, setLimit] = useState(100);
  const base = useApi(() => {
    const params = new URLSearchParams({ limit: String(limit) });
    if (kind) params.set('kind', kind);
    return api.get(`/api/admin/events?${params}`);
  }, [kind, limit]);

  const fetched = base.data ? base.data.items : [];
  const newest = fetched.length ? fetched[0].id : 0;
  const fresh = live.filter((event) => event.id > newest && (!kind || event.kind === kind));
  const shown = [...fresh, ...fetched];
  const knownKinds = [...new Set([...KINDS, ...live.map((event) => event.kind)])].sort();

  return html`<section class="card" aria-labelledby="events-title">
    <header class="card-header">
      <h2 id="events-title">Events</h2>
      <${LiveIndicator} />
    </header>
    <div class="toolbar toolbar-narrow">
      <${Field} id="events-kind" label="Kind">
        <select id="events-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}>
          <option value="">All kinds</option>
          ${knownKinds.map((value) => html`<option value=${value}>${value}</option>`)}
        </select>
      <//>
    </div>
    <${ErrorBanner} error=${base.error} />
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
          <span class="event-message">${event.message}</span>
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
