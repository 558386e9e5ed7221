// Logging in, and the password change ODS asks for before anything else.

import { html, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { Banner, ErrorBanner, Field, useSubmit } from './ui.js';

export function LoginForm({ notice, onLoggedIn }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { submit, busy, error } = useSubmit(async () => {
    const answer = await api.post('/api/auth/login', { username, password });
    api.session.set(answer.token);
    onLoggedIn(answer, password);
  });

  return html`<main class="auth-page">
    <form class="auth-card" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title"><span class="logo" aria-hidden="true">◆</span> ODS console</h1>
      <p class="muted">Open Distribution Server</p>
      <${Banner} kind="info">${notice}<//>
      <${ErrorBanner} error=${error} />
      <${Field} id="login-username" label="Username">
        <input id="login-username" name="username" autocomplete="username" required autofocus
          value=${username} onInput=${(e) => setUsername(e.target.value)} />
      <//>
      <${Field} id="login-password" label="Password">
        <input id="login-password" name="password" type="password" autocomplete="current-password"
          required value=${password} onInput=${(e) => setPassword(e.target.value)} />
      <//>
      <button type="submit" class="primary wide" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
    </form>
  </main>`;
}

// The form both for the forced first change and for a change from the user
// menu. `knownPassword` is the one just typed at login, so it is not asked again.
export function PasswordForm({ knownPassword, onChanged, onCancel, idPrefix = 'pw' }) {
  const [current, setCurrent] = useState(knownPassword || '');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const { submit, busy, error } = useSubmit(async () => {
    if (next !== again) {
      throw new Error('The two new passwords differ. Type the same one twice.');
    }
    await api.post('/api/auth/password', { old_password: current, new_password: next });
    onChanged();
  });

  return html`<form onSubmit=${submit} class="stack">
    <${ErrorBanner} error=${error} />
    ${!knownPassword &&
    html`<${Field} id=${`${idPrefix}-current`} label="Current password">
      <input id=${`${idPrefix}-current`} type="password" autocomplete="current-password" required
        value=${current} onInput=${(e) => setCurrent(e.target.value)} />
    <//>`}
    <${Field} id=${`${idPrefix}-new`} label="New password"
      hint="At least 8 characters; a few words make a good one.">
      <input id=${`${idPrefix}-new`} type="password" autocomplete="new-password" required minlength="8"
        aria-describedby=${`${idPrefix}-new-hint`} value=${next} onInput=${(e) => setNext(e.target.value)} />
    <//>
    <${Field} id=${`${idPrefix}-again`} label="New password again">
      <input id=${`${idPrefix}-again`} type="password" autocomplete="new-password" required
        value=${again} onInput=${(e) => setAgain(e.target.value)} />
    <//>
    <div class="actions">
      ${onCancel && html`<button type="button" onClick=${onCancel}>Cancel</button>`}
      <button type="submit" class="primary" disabled=${busy}>
        ${busy ? 'Saving…' : 'Change password'}
      </button>
    </div>
  </form>`;
}

export function FirstPasswordPage({ username, knownPassword, onChanged, onLogout }) {
  return html`<main class="auth-page">
    <section class="auth-card" aria-labelledby="first-title">
      <h1 id="first-title">Choose a new password</h1>
      <p>
        ${username ? html`<strong>${username}</strong>, before` : 'Before'} you go on, replace the
        password you logged in with. ODS refuses every other call until you do.
      </p>
      <${PasswordForm} knownPassword=${knownPassword} onChanged=${onChanged} idPrefix="first" />
      <p class="muted small">
        Not you? <button type="button" class="link" onClick=${onLogout}>Log out</button>
      </p>
    </section>
  </main>`;
}
