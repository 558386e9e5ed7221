// Users & tokens tab: accounts and roles (admins), and everyone's own API tokens.

import { html, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  Badge,
  Banner,
  Confirm,
  CopyButton,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Modal,
  ModalForm,
  ROLES,
  Time,
  can,
  roleName,
  useApi,
  useMe,
  useSubmit,
} from './ui.js';

export function UsersTab() {
  const me = useMe();
  return html`<div class="stack-lg">
    ${can(me, 'admin')
      ? html`<${Users} me=${me} />`
      : html`<${Banner} kind="info">
          You are ${roleName(me.role).toLowerCase()}: only admins manage accounts. You manage your own
          API tokens below.
        <//>`}
    <${Tokens} />
  </div>`;
}

function RoleSelect({ id, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${ROLES.map(([role, label]) => html`<option value=${role}>${label}</option>`)}
  </select>`;
}

function Users({ me }) {
  const users = useApi(() => api.get('/api/admin/users'), []);
  const [dialog, setDialog] = useState(null);
  const items = users.data ? users.data.items : [];
  return html`<section class="card" aria-labelledby="users-title">
    <header class="card-header">
      <h2 id="users-title">Users</h2>
      <button type="button" class="primary" onClick=${() => setDialog({ kind: 'create' })}>Add user</button>
    </header>
    <p class="hint">
      Admins do everything; package managers upload, replace, delete and promote packages;
      read-only users look. Directory (LDAP) users get their role from their directory groups at
      every login, and their password lives in the directory.
    </p>
    <${ErrorBanner} error=${users.error} />
    ${!users.data && users.loading && html`<${Loading} />`}
    ${users.data && !items.length && html`<${Empty} title="No users" />`}
    ${items.length > 0 &&
    html`<div class="table-wrap">
      <table class="responsive">
        <thead>
          <tr>
            <th scope="col">Username</th>
            <th scope="col">Role</th>
            <th scope="col">Source</th>
            <th scope="col">Password</th>
            <th scope="col">Created</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${items.map(
            (user) => html`<tr key=${user.id}>
              <td data-label="Username">
                <strong>${user.username}</strong>${user.id === me.id && html` <span class="muted small">(you)</span>`}
              </td>
              <td data-label="Role">${roleName(user.role)}</td>
              <td data-label="Source">${user.source === 'ldap' ? 'Directory (LDAP)' : 'Local'}</td>
              <td data-label="Password">
                ${user.source === 'ldap'
                  ? html`<span class="muted">in the directory</span>`
                  : user.must_change_password
                    ? html`<${Badge} kind="warn">must change<//>`
                    : html`<span class="muted">set</span>`}
              </td>
              <td data-label="Created"><${Time} iso=${user.created} /></td>
              <td class="row-actions">
                ${user.source !== 'ldap' &&
                html`<button type="button" aria-label=${`Edit ${user.username}`}
                  onClick=${() => setDialog({ kind: 'edit', user })}>Edit</button>`}
                <button type="button" class="danger-outline" aria-label=${`Delete ${user.username}`}
                  disabled=${user.id === me.id} title=${user.id === me.id ? 'You cannot delete your own account' : ''}
                  onClick=${() => setDialog({ kind: 'delete', user })}>Delete</button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
    ${dialog && dialog.kind === 'create' &&
    html`<${CreateUser} onClose=${() => setDialog(null)} onSaved=${users.reload} />`}
    ${dialog && dialog.kind === 'edit' &&
    html`<${EditUser} id=${dialog.user.id} onClose=${() => setDialog(null)} onSaved=${users.reload} />`}
    ${dialog && dialog.kind === 'delete' &&
    html`<${Confirm} title=${`Delete ${dialog.user.username}?`} confirmLabel="Delete" danger
      action=${async () => {
        await api.del(`/api/admin/users/${dialog.user.id}`);
        users.reload();
      }}
      onClose=${() => setDialog(null)}>
      <p>The account, its login sessions and its API tokens are removed. Scripts using its tokens stop working.</p>
    <//>`}
  </section>`;
}

function CreateUser({ onClose, onSaved }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('read_only');
  const [mustChange, setMustChange] = useState(true);
  const { submit, busy, error } = useSubmit(async () => {
    await api.post('/api/admin/users', {
      username,
      password,
      role,
      must_change_password: mustChange,
    });
    onSaved();
    onClose();
  });
  return html`<${Modal} title="Add user" onClose=${onClose}>
    <${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy} label="Add user">
      <${Field} id="user-username" label="Username" hint="Letters, digits and _ . @ -">
        <input id="user-username" required autocomplete="off" pattern="[A-Za-z0-9_.@\\-]+"
          maxlength="150" value=${username} onInput=${(e) => setUsername(e.target.value)} />
      <//>
      <${Field} id="user-password" label="Password" hint="At least 8 characters.">
        <input id="user-password" type="password" required autocomplete="new-password"
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
      <//>
      <${Field} id="user-role" label="Role">
        <${RoleSelect} id="user-role" value=${role} onChange=${setRole} />
      <//>
      <div class="field checkbox">
        <input id="user-must-change" type="checkbox" checked=${mustChange}
          onChange=${(e) => setMustChange(e.target.checked)} />
        <label for="user-must-change">Must change the password at first login</label>
      </div>
    <//>
  <//>`;
}

function EditUser({ id, onClose, onSaved }) {
  const loaded = useApi(() => api.get(`/api/admin/users/${id}`), [id]);
  const user = loaded.data;
  return html`<${Modal} title=${user ? `Edit ${user.username}` : 'Edit user'} onClose=${onClose}>
    ${!user && (loaded.error ? html`<div class="modal-body"><${ErrorBanner} error=${loaded.error} /></div>` : html`<div class="modal-body"><${Loading} /></div>`)}
    ${user && html`<${EditUserForm} user=${user} onClose=${onClose} onSaved=${onSaved} />`}
  <//>`;
}

function EditUserForm({ user, onClose, onSaved }) {
  const [role, setRole] = useState(user.role);
  const [password, setPassword] = useState('');
  const [mustChange, setMustChange] = useState(user.must_change_password);
  const { submit, busy, error } = useSubmit(async () => {
    const body = {};
    if (role !== user.role) body.role = role;
    if (password) body.password = password;
    if (mustChange !== user.must_change_password || password) body.must_change_password = mustChange;
    if (Object.keys(body).length) await api.patch(`/api/admin/users/${user.id}`, body);
    onSaved();
    onClose();
  });
  return html`<${ModalForm} onSubmit=${submit} onCancel=${onClose} error=${error} busy=${busy} label="Save">
    <${Field} id="edit-role" label="Role">
      <${RoleSelect} id="edit-role" value=${role} onChange=${setRole} />
    <//>
    <${Field} id="edit-password" label="New password"
      hint="Leave empty to keep it. A new password ends the user's sessions and API tokens.">
      <input id="edit-password" type="password" autocomplete="new-password" value=${password}
        onInput=${(e) => {
          setPassword(e.target.value);
          if (e.target.value) setMustChange(true);
        }} />
    <//>
    <div class="field checkbox">
      <input id="edit-must-change" type="checkbox" checked=${mustChange}
        onChange=${(e) => setMustChange(e.target.checked)} />
      <label for="edit-must-change">Must change the password at next login</label>
    </div>
  <//>`;
}

function Tokens() {
  const tokens = useApi(() => api.get('/api/admin/tokens'), []);
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const items = tokens.data ? tokens.data.items : [];

  const { submit, busy, error, setError } = useSubmit(async () => {
    const body = { name: name.trim() };
    if (days) body.expires_days = Number(days);
    setCreated(await api.post('/api/admin/tokens', body));
    setName('');
    setDays('');
    tokens.reload();
  });

  return html`<section class="card" aria-labelledby="tokens-title">
    <h2 id="tokens-title">API tokens</h2>
    <p class="hint">
      For AutoPkg, CI and scripts: send <code>Authorization: Bearer ods_…</code>. A token has your
      role. Login sessions are listed too.
    </p>
    <${ErrorBanner} error=${error} onClose=${() => setError(null)} />
    ${created &&
    html`<div class="new-token" role="status">
      <p><strong>New token “${created.name}”.</strong> Copy it now: it is not shown again.</p>
      <div class="secret">
        <code aria-label="New token">${created.token}</code>
        <${CopyButton} value=${created.token} label="Copy new token" />
      </div>
      <button type="button" onClick=${() => setCreated(null)}>I have copied it</button>
    </div>`}
    <form class="form-row" onSubmit=${submit}>
      <${Field} id="token-name" label="Token name" hint="What uses it, e.g. AutoPkg on build-mac-01.">
        <input id="token-name" required maxlength="255" value=${name} onInput=${(e) => setName(e.target.value)} />
      <//>
      <${Field} id="token-days" label="Expires after (days)" hint="Empty: never expires.">
        <input id="token-days" type="number" min="1" max="3650" value=${days}
          onInput=${(e) => setDays(e.target.value)} />
      <//>
      <div class="form-row-actions">
        <button type="submit" class="primary" disabled=${busy}>Create token</button>
      </div>
    </form>
    <${ErrorBanner} error=${tokens.error} />
    ${!tokens.data && tokens.loading && html`<${Loading} />`}
    ${tokens.data && !items.length && html`<${Empty} title="No tokens" />`}
    ${items.length > 0 &&
    html`<div class="table-wrap">
      <table class="responsive">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${items.map(
            (token) => html`<tr key=${token.id}>
              <td data-label="Name">${token.name || html`<span class="muted">(login)</span>`}</td>
              <td data-label="Kind">${token.kind === 'api' ? 'API token' : 'Login session'}</td>
              <td data-label="Created"><${Time} iso=${token.created} /></td>
              <td data-label="Expires">${token.expires ? html`<${Time} iso=${token.expires} />` : 'never'}</td>
              <td data-label="Last used"><${Time} iso=${token.last_used} relative /></td>
              <td class="row-actions">
                <button type="button" class="danger-outline" aria-label=${`Revoke ${token.name}`}
                  onClick=${() => setRevoking(token)}>Revoke</button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
    ${revoking &&
    html`<${Confirm} title=${`Revoke ${revoking.name}?`} confirmLabel="Revoke" danger
      action=${async () => {
        await api.del(`/api/admin/tokens/${revoking.id}`);
        tokens.reload();
      }}
      onClose=${() => setRevoking(null)}>
      <p>
        ${revoking.kind === 'api'
          ? 'Scripts using this token get 401 from now on.'
          : 'That login session ends; if it is this one, you are logged out.'}
      </p>
    <//>`}
  </section>`;
}
