// The ODS web console: login, then one tab per part of the admin API.

import { html, render, useEffect, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { AdminTab } from './admin.js';
import { EventsTab, LiveIndicator } from './events.js';
import { createLive } from './live.js';
import { FirstPasswordPage, LoginForm, PasswordForm } from './login.js';
import { NetworkTab } from './network.js';
import { NotificationsTab } from './notifications.js';
import { PackagesTab } from './packages.js';
import { About, Live, Loading, Me, Modal, roleName } from './ui.js';
import { UsersTab } from './users.js';

const TABS = [
  ['admin', 'Admin', AdminTab],
  ['network', 'Network', NetworkTab],
  ['packages', 'Packages', PackagesTab],
  ['events', 'Events', EventsTab],
  ['notifications', 'Notifications', NotificationsTab],
  ['users', 'Users & tokens', UsersTab],
];

const EXPIRED = 'Your session has ended (it expired, was revoked, or the server forgot it). Log in again.';

function currentTab() {
  const name = window.location.hash.replace(/^#\/?/, '');
  return TABS.some(([key]) => key === name) ? name : 'admin';
}

function App() {
  // checking → login | password | ready | offline
  const [auth, setAuth] = useState(() => ({ state: api.session.token ? 'checking' : 'login' }));

  const toLogin = (notice = null) => {
    api.session.clear();
    setAuth({ state: 'login', notice });
  };

  const loadMe = async (knownPassword = null) => {
    try {
      const me = await api.get('/api/auth/me');
      setAuth(me.must_change_password ? { state: 'password', me, knownPassword } : { state: 'ready', me });
    } catch (error) {
      // 401 is handled by onAuthProblem; a server that does not answer keeps the session.
      if (error.status === 0) setAuth({ state: 'offline', message: error.message, knownPassword });
      else if (error.status !== 401) toLogin(error.message);
    }
  };

  useEffect(() => {
    api.onAuthProblem({
      // Only while logged in: requests still in flight after a logout also answer 401.
      unauthorized: () => api.session.token && toLogin(EXPIRED),
      passwordChangeRequired: () => loadMe(),
    });
    if (api.session.token) loadMe();
  }, []);

  const logout = async () => {
    try {
      await api.post('/api/auth/logout');
    } catch {
      // Logged out here whatever the server says.
    }
    toLogin('You are logged out.');
  };

  if (auth.state === 'checking') return html`<main class="auth-page"><${Loading} label="Opening the console…" /></main>`;
  if (auth.state === 'offline') {
    return html`<main class="auth-page">
      <section class="auth-card" aria-labelledby="offline-title">
        <h1 id="offline-title">ODS does not answer</h1>
        <div class="banner banner-error" role="alert">${auth.message}</div>
        <button type="button" class="primary wide" onClick=${() => loadMe(auth.knownPassword)}>Try again</button>
      </section>
    </main>`;
  }
  if (auth.state === 'login') {
    return html`<${LoginForm} notice=${auth.notice}
      onLoggedIn=${(answer, password) => loadMe(answer.must_change_password ? password : null)} />`;
  }
  if (auth.state === 'password') {
    return html`<${FirstPasswordPage} username=${auth.me.username} knownPassword=${auth.knownPassword}
      onChanged=${() => loadMe()} onLogout=${logout} />`;
  }
  return html`<${Console} me=${auth.me} onLogout=${logout} />`;
}

function Console({ me, onLogout }) {
  const [tab, setTab] = useState(currentTab);
  const [live] = useState(createLive);
  const [about, setAbout] = useState({ about: null, error: null });
  const [changing, setChanging] = useState(false);
  const [notice, setNotice] = useState(null);

  const reloadAbout = async () => {
    try {
      setAbout({ about: await api.get('/api/admin/about'), error: null });
    } catch (error) {
      setAbout((old) => ({ ...old, error }));
    }
  };

  useEffect(() => {
    const follow = () => setTab(currentTab());
    window.addEventListener('hashchange', follow);
    live.start();
    reloadAbout();
    const unsubscribe = live.subscribe((event) => {
      if (event.kind === 'server.updated') reloadAbout();
    });
    return () => {
      window.removeEventListener('hashchange', follow);
      unsubscribe();
      live.stop();
    };
  }, []);

  useEffect(() => {
    const name = about.about && about.about.name;
    const [, label] = TABS.find(([key]) => key === tab);
    document.title = `${label} · ${name || 'ODS'}`;
  }, [tab, about.about]);

  const [, , Tab] = TABS.find(([key]) => key === tab);
  return html`<${Me.Provider} value=${me}>
    <${About.Provider} value=${{ ...about, reload: reloadAbout }}>
      <${Live.Provider} value=${live}>
        <header class="topbar">
          <div class="brand">
            <span class="logo" aria-hidden="true">◆</span>
            <span class="brand-name">ODS</span>
            <span class="server-name">${(about.about && about.about.name) || 'unnamed server'}</span>
          </div>
          <nav class="tabs" aria-label="Console">
            ${TABS.map(
              ([key, label]) => html`<a href=${`#/${key}`} aria-current=${tab === key ? 'page' : undefined}>${label}</a>`,
            )}
          </nav>
          <div class="account">
            <${LiveIndicator} />
            <span class="who" title=${roleName(me.role)}>${me.username} <span class="muted small">(${roleName(me.role)})</span></span>
            <button type="button" onClick=${() => setChanging(true)}>Change password</button>
            <button type="button" onClick=${onLogout}>Log out</button>
          </div>
        </header>
        <main class="content" id="main">
          ${notice && html`<div class="banner banner-success" role="status">${notice}
            <button type="button" class="icon-button" aria-label="Dismiss" onClick=${() => setNotice(null)}>×</button></div>`}
          <${Tab} />
        </main>
        ${changing &&
        html`<${Modal} title="Change your password" onClose=${() => setChanging(false)}>
          <div class="modal-body">
            <${PasswordForm} idPrefix="change" onCancel=${() => setChanging(false)}
              onChanged=${() => {
                setChanging(false);
                setNotice('Password changed. Your other login sessions have ended.');
              }} />
          </div>
        <//>`}
      <//>
    <//>
  <//>`;
}

render(html`<${App} />`, document.getElementById('app'));
