// Small building blocks shared by the console's screens.

import {
  createContext,
  html,
  useContext,
  useEffect,
  useRef,
  useState,
} from './vendor/htm-preact-standalone.module.js';

export const STAGES = ['Dev', 'Test', 'Prod'];
export const ROLES = [
  ['admin', 'Admin'],
  ['package_manager', 'Package manager'],
  ['read_only', 'Read-only'],
];
const RANK = { read_only: 0, package_manager: 1, admin: 2 };

// Who is logged in ({id, username, role}) and what this server is (About).
export const Me = createContext(null);
export const About = createContext({ about: null, reload: () => {} });
export const Live = createContext(null);

export function useMe() {
  return useContext(Me);
}

export function can(me, role) {
  return Boolean(me) && RANK[me.role] >= RANK[role];
}

export function roleName(role) {
  const found = ROLES.find(([value]) => value === role);
  return found ? found[1] : role;
}

// --- formatting -----------------------------------------------------------

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

export function bytes(count) {
  if (count === null || count === undefined) return '–';
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

// API times are UTC without a zone: "2017-11-11T03:15:54".
export function parseTime(iso) {
  if (!iso) return null;
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
}

export function when(iso) {
  const moment = parseTime(iso);
  return moment ? moment.toLocaleString() : '–';
}

export function ago(iso) {
  const moment = parseTime(iso);
  if (!moment) return 'never';
  const seconds = Math.round((Date.now() - moment.getTime()) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return moment.toLocaleDateString();
}

export function Time({ iso, relative = false }) {
  if (!iso) return html`<span class="muted">${relative ? 'never' : '–'}</span>`;
  return html`<time datetime=${`${iso}Z`} title=${when(iso)}>${relative ? ago(iso) : when(iso)}</time>`;
}

// --- hooks ----------------------------------------------------------------

// Calls `load` now, whenever `deps` change, and every `seconds` (if given)
// while the page is visible. Returns {data, error, loading, reload}.
export function useApi(load, deps = [], seconds = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const latest = useRef(0);
  const reload = async () => {
    const ticket = ++latest.current;
    try {
      const data = await load();
      if (ticket === latest.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (ticket === latest.current) setState((old) => ({ ...old, error, loading: false }));
    }
  };
  useEffect(() => {
    setState((old) => ({ ...old, loading: true }));
    reload();
    if (!seconds) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, seconds * 1000);
    return () => clearInterval(timer);
  }, deps);
  return { ...state, reload };
}

// Runs `fn` for every live event whose kind starts with one of `prefixes`.
export function useEvents(prefixes, fn) {
  const live = useContext(Live);
  const callback = useRef(fn);
  callback.current = fn;
  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe((event) => {
      if (prefixes.some((prefix) => event.kind.startsWith(prefix))) callback.current(event);
    });
  }, [live]);
}

// --- components -----------------------------------------------------------

export function Banner({ kind = 'error', children, onClose }) {
  if (!children) return null;
  const role = kind === 'error' ? 'alert' : 'status';
  return html`<div class=${`banner banner-${kind}`} role=${role}>
    <span class="banner-text">${children}</span>
    ${onClose &&
    html`<button type="button" class="icon-button" aria-label="Dismiss" onClick=${onClose}>×</button>`}
  </div>`;
}

export function ErrorBanner({ error, onClose }) {
  if (!error) return null;
  return html`<${Banner} kind="error" onClose=${onClose}>${error.message}<//>`;
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${label}</p>`;
}

export function Empty({ title, children }) {
  return html`<div class="empty"><p class="empty-title">${title}</p>${children && html`<p>${children}</p>`}</div>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${`badge badge-${kind}`}>${children}</span>`;
}

export function StageBadge({ stage }) {
  return html`<${Badge} kind=${`stage-${stage.toLowerCase()}`}>${stage}<//>`;
}

export function CopyButton({ value, label }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // No clipboard (plain http on another host): select the text for Ctrl+C instead.
      const field = document.createElement('textarea');
      field.value = value;
      document.body.append(field);
      field.select();
      document.execCommand('copy');
      field.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return html`<button type="button" class="copy" aria-label=${label} title=${label} onClick=${copy}>
    ${copied ? 'Copied' : 'Copy'}
  </button>`;
}

export function Digest({ value, label }) {
  if (!value) return html`<span class="muted">–</span>`;
  return html`<span class="digest">
    <code title=${value}>${value.slice(0, 10)}…</code>
    <${CopyButton} value=${value} label=${label} />
  </span>`;
}

// A modal dialog (native <dialog>: focus stays inside, Escape closes).
export function Modal({ title, onClose, children, wide = false }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const cancel = (event) => {
      event.preventDefault();
      onClose();
    };
    dialog.addEventListener('cancel', cancel);
    return () => dialog.removeEventListener('cancel', cancel);
  }, []);
  const id = useRef(`dialog-${Math.random().toString(36).slice(2)}`).current;
  return html`<dialog ref=${ref} class=${wide ? 'modal modal-wide' : 'modal'} aria-labelledby=${id}>
    <header class="modal-header">
      <h2 id=${id}>${title}</h2>
      <button type="button" class="icon-button" aria-label="Close" onClick=${onClose}>×</button>
    </header>
    ${children}
  </dialog>`;
}

// A form's submit handler around `action` (which returns a promise): `busy`
// while it runs, and the error it threw kept in `error` for an ErrorBanner.
export function useSubmit(action) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return { submit, busy, error, setError };
}

// A dialog's form: the error banner and the fields, then Cancel and the
// submit button (`busyLabel` while `busy`; also off while `disabled`).
export function ModalForm({
  onSubmit, onCancel, error, busy, label, busyLabel = 'Saving…', danger = false,
  disabled = false, children,
}) {
  return html`<form onSubmit=${onSubmit}>
    <div class="modal-body stack">
      <${ErrorBanner} error=${error} />
      ${children}
    </div>
    <footer class="modal-footer">
      <button type="button" onClick=${onCancel}>Cancel</button>
      <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${disabled || busy}>
        ${busy ? busyLabel : label}
      </button>
    </footer>
  </form>`;
}

// "Are you sure?" with the consequence spelled out. `action` returns a
// promise; an API error stays in the dialog.
export function Confirm({ title, confirmLabel, danger = false, action, onClose, children }) {
  const { submit: run, busy, error } = useSubmit(async () => {
    await action();
    onClose();
  });
  return html`<${Modal} title=${title} onClose=${onClose}>
    <form onSubmit=${run}>
      <div class="modal-body">${children}<${ErrorBanner} error=${error} /></div>
      <footer class="modal-footer">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${busy}>
          ${busy ? 'Working…' : confirmLabel}
        </button>
      </footer>
    </form>
  <//>`;
}

export function Field({ id, label, hint, children }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
  </div>`;
}

export function Meter({ label, used, total, text }) {
  const percent = total ? Math.round((used / total) * 100) : 0;
  return html`<div class="meter">
    <div class="meter-label"><span>${label}</span><span>${text}</span></div>
    <progress max="100" value=${percent} aria-label=${`${label}: ${percent}% used`}></progress>
  </div>`;
}
