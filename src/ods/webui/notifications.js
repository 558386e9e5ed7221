// Notifications tab: where events are posted (webhooks) and mailed (email
// subscriptions), with each one's delivery log. Admins only, as in the API.

import { html } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { EmailSubscriptions } from './email.js';
import { Banner, ErrorBanner, can, roleName, useApi, useMe } from './ui.js';
import { Webhooks } from './webhooks.js';

export function NotificationsTab() {
  const me = useMe();
  if (!can(me, 'admin')) {
    return html`<${Banner} kind="info">
      You are ${roleName(me.role).toLowerCase()}: only admins manage webhooks and email
      notifications. The Events tab shows what happens.
    <//>`;
  }
  return html`<${Notifications} />`;
}

function Notifications() {
  // The kinds a webhook or subscription can pick: the event catalogue.
  const catalogue = useApi(() => api.get('/api/admin/events/kinds'), []);
  const kinds = catalogue.data ? catalogue.data.items : [];
  return html`<div class="stack-lg">
    <${ErrorBanner} error=${catalogue.error} />
    <${Webhooks} kinds=${kinds} />
    <${EmailSubscriptions} kinds=${kinds} />
  </div>`;
}
