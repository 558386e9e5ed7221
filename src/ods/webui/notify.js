// Pieces the Notifications tab's webhooks and email subscriptions share: the
// event kinds picker, a delivery's status, and paging through a delivery log.

import { html } from './vendor/htm-preact-standalone.module.js';
import { Badge } from './ui.js';

// How often an open delivery log is fetched again (pending deliveries move on their own).
export const LOG_SECONDS = 2;
export const PAGE_SIZE = 20;

const STATUS_TONE = { delivered: 'ok', failed: 'bad', pending: 'busy' };

export function DeliveryStatus({ status }) {
  return html`<${Badge} kind=${STATUS_TONE[status] || 'neutral'}>${status}<//>`;
}

// A subscription's kinds in words: an empty list means every kind.
export function EventsText({ events }) {
  if (!events.length) return html`<span>every kind</span>`;
  return html`<span class="kind-names">${events.join(', ')}</span>`;
}

// What the form sends as `events`: [] for every kind, else the ticked ones.
export function chosenEvents(every, chosen) {
  if (every) return [];
  if (!chosen.length) {
    throw new Error('Tick at least one kind of event, or Every kind.');
  }
  return chosen;
}

// "Every kind", or a checkbox per kind of the event catalogue (its description beside it).
export function EventPicker({ idPrefix, kinds, every, chosen, onEvery, onChosen }) {
  const toggle = (kind, on) => onChosen(on ? [...chosen, kind] : chosen.filter((item) => item !== kind));
  return html`<fieldset class="choices">
    <legend>Events</legend>
    <div class="field checkbox">
      <input id=${`${idPrefix}-every`} type="checkbox" checked=${every}
        onChange=${(e) => onEvery(e.target.checked)} />
      <label for=${`${idPrefix}-every`}>Every kind</label>
      <p class="hint">Also kinds that later versions of ODS add.</p>
    </div>
    ${!every &&
    html`<div class="kind-list" role="group" aria-label="Event kinds">
      ${kinds.map(
        (item) => html`<div class="field checkbox" key=${item.kind}>
          <input id=${`${idPrefix}-kind-${item.kind}`} type="checkbox" checked=${chosen.includes(item.kind)}
            onChange=${(e) => toggle(item.kind, e.target.checked)} />
          <label for=${`${idPrefix}-kind-${item.kind}`} title=${item.description}>${item.kind}</label>
        </div>`,
      )}
    </div>`}
  </fieldset>`;
}

// "21–40 of 45" with Newer and Older buttons, for a log the API pages by limit/offset.
export function Pager({ offset, total, count, onOffset }) {
  if (total <= PAGE_SIZE) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${offset === 0}
      onClick=${() => onOffset(Math.max(0, offset - PAGE_SIZE))}>Newer</button>
    <span class="muted small">${count ? `${offset + 1}–${offset + count}` : '0'} of ${total}</span>
    <button type="button" disabled=${offset + count >= total}
      onClick=${() => onOffset(offset + PAGE_SIZE)}>Older</button>
  </nav>`;
}
