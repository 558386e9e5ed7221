// Packages tab: upload, the list (sort, filter, search, live download
// progress), details with chunk digests, stage change, replace and delete.

import { html, useContext, useEffect, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import {
  About,
  Badge,
  Confirm,
  CopyButton,
  Digest,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Modal,
  ModalForm,
  STAGES,
  StageBadge,
  Time,
  bytes,
  can,
  useApi,
  useEvents,
  useMe,
} from './ui.js';
import { ServerName } from './trust.js';
import { UploadCard, UploadProgress, useUpload } from './upload.js';

const STATUSES = ['Public', 'Downloading', 'Publishing', 'Failed', 'Withdrawn'];
const ACTIVE = new Set(['Downloading', 'Publishing']);
const ACTIVE_POLL_MS = 1000;
const STAGE_RANK = { Dev: 0, Test: 1, Prod: 2 };

const COLUMNS = [
  ['filename', 'Filename', (p) => p.filename.toLowerCase()],
  ['file_size', 'Size', (p) => p.file_size],
  ['stage', 'Stage', (p) => STAGE_RANK[p.stage]],
  ['status', 'Status', (p) => p.status],
  ['created', 'Created', (p) => p.created_ts],
];

function shareUrl(filename) {
  return `/share/${encodeURIComponent(filename)}`;
}

export function PackagesTab() {
  const me = useMe();
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  const [stage, setStage] = useState('');
  const [status, setStatus] = useState('');
  const [sort, setSort] = useState({ key: 'created', descending: true });
  const [dialog, setDialog] = useState(null);

  useEffect(() => {
    const timer = setTimeout(() => setQuery(search.trim()), 250);
    return () => clearTimeout(timer);
  }, [search]);

  const list = useApi(() => {
    const params = new URLSearchParams();
    if (stage) params.set('stage', stage);
    if (status) params.set('status', status);
    if (query) params.set('search', query);
    const suffix = params.toString() ? `?${params}` : '';
    return api.get(`/api/admin/packages${suffix}`);
  }, [stage, status, query]);
  useEvents(['package.'], () => list.reload());

  const items = list.data ? list.data.items : [];
  const active = items.some((item) => ACTIVE.has(item.status));
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(list.reload, ACTIVE_POLL_MS);
    return () => clearInterval(timer);
  }, [active, stage, status, query]);

  const [, , keyOf] = COLUMNS.find(([key]) => key === sort.key);
  const sorted = [...items].sort((a, b) => {
    const left = keyOf(a);
    const right = keyOf(b);
    const order = left < right ? -1 : left > right ? 1 : a.id - b.id;
    return sort.descending ? -order : order;
  });
  const filtered = Boolean(stage || status || query);
  const manage = can(me, 'package_manager');
  const retry = can(me, 'admin');

  return html`<div class="stack-lg">
    ${manage && html`<${UploadCard} onUploaded=${list.reload} />`}
    <section class="card" aria-labelledby="packages-title">
      <header class="card-header">
        <h2 id="packages-title">Packages</h2>
        <span class="muted small" aria-live="polite">
          ${list.data ? `${list.data.total} ${list.data.total === 1 ? 'package' : 'packages'}` : ''}
          ${active ? ' · updating live' : ''}
        </span>
      </header>
      <div class="toolbar" role="search">
        <${Field} id="packages-search" label="Search">
          <input id="packages-search" type="search" placeholder="Part of a filename"
            value=${search} onInput=${(e) => setSearch(e.target.value)} />
        <//>
        <${Field} id="packages-stage" label="Stage">
          <select id="packages-stage" value=${stage} onChange=${(e) => setStage(e.target.value)}>
            <option value="">All stages</option>
            ${STAGES.map((value) => html`<option value=${value}>${value}</option>`)}
          </select>
        <//>
        <${Field} id="packages-status" label="Status">
          <select id="packages-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
            <option value="">All statuses</option>
            ${STATUSES.map((value) => html`<option value=${value}>${value}</option>`)}
          </select>
        <//>
      </div>
      <${ErrorBanner} error=${list.error} />
      ${!list.data && list.loading && html`<${Loading} />`}
      ${list.data &&
      !items.length &&
      (filtered
        ? html`<${Empty} title="No package matches">Clear the search or the filters to see all.<//>`
        : html`<${Empty} title="No packages yet">
            ${manage
              ? 'Upload one above, or register with another server to receive its packages.'
              : 'Packages appear here when they are uploaded or copied from another server.'}
          <//>`)}
      ${items.length > 0 &&
      html`<${PackageTable} items=${sorted} sort=${sort} onSort=${setSort} manage=${manage} retry=${retry}
        onAction=${(kind, item) => setDialog({ kind, item })} />`}
    </section>
    ${dialog && html`<${PackageDialog} ...${dialog} onClose=${() => setDialog(null)} onChanged=${list.reload} />`}
  </div>`;
}

function SortHeader({ column, label, sort, onSort }) {
  const current = sort.key === column;
  const direction = current ? (sort.descending ? 'descending' : 'ascending') : 'none';
  const toggle = () => onSort({ key: column, descending: current ? !sort.descending : false });
  return html`<th scope="col" aria-sort=${direction}>
    <button type="button" class="sort" onClick=${toggle}>
      ${label}<span aria-hidden="true" class="sort-mark">${current ? (sort.descending ? ' ▼' : ' ▲') : ''}</span>
    </button>
  </th>`;
}

function PackageTable({ items, sort, onSort, manage, retry, onAction }) {
  return html`<div class="table-wrap">
    <table class="responsive packages">
      <thead>
        <tr>
          ${COLUMNS.map(
            ([key, label]) => html`<${SortHeader} column=${key} label=${label} sort=${sort} onSort=${onSort} />`,
          )}
          <th scope="col">Checksums</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${items.map(
          (item) => html`<tr key=${item.id} data-filename=${item.filename}>
            <td data-label="Filename" class="filename">
              ${item.status === 'Public'
                ? html`<a href=${shareUrl(item.filename)} download=${item.filename}
                    title=${`Download ${item.filename}`}>${item.filename}</a>`
                : html`<span>${item.filename}</span>`}
            </td>
            <td data-label="Size" class="nowrap">${item.file_size_hr}</td>
            <td data-label="Stage"><${StageBadge} stage=${item.stage} /></td>
            <td data-label="Status"><${PackageStatus} item=${item} /></td>
            <td data-label="Created"><${Time} iso=${item.created} /></td>
            <td data-label="Checksums">
              <div class="digests">
                <span><span class="digest-name">SHA1</span> <${Digest} value=${item.sha1} label=${`Copy SHA1 of ${item.filename}`} /></span>
                <span><span class="digest-name">SHA-256</span> <${Digest} value=${item.sha256} label=${`Copy SHA-256 of ${item.filename}`} /></span>
              </div>
            </td>
            <td class="row-actions">
              <button type="button" aria-label=${`Details of ${item.filename}`}
                onClick=${() => onAction('details', item)}>Details</button>
              ${retry && item.status === 'Failed' &&
              html`<button type="button" aria-label=${`Retry ${item.filename}`}
                  onClick=${() => onAction('retry', item)}>Retry</button>`}
              ${manage &&
              html`<button type="button" aria-label=${`Change stage of ${item.filename}`}
                  onClick=${() => onAction('stage', item)}>Stage</button>
                <button type="button" aria-label=${`Replace ${item.filename}`}
                  onClick=${() => onAction('replace', item)}>Replace</button>
                <button type="button" class="danger-outline" aria-label=${`Delete ${item.filename}`}
                  onClick=${() => onAction('delete', item)}>Delete</button>`}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function PackageStatus({ item }) {
  if (item.status === 'Public') return html`<${Badge} kind="ok">Public<//>`;
  if (item.status === 'Failed') {
    return html`<${Badge} kind="bad">Failed<//>
      ${item.status_reason && html`<p class="small error-text">${item.status_reason}</p>`}`;
  }
  if (item.status === 'Publishing') return html`<${Badge} kind="busy">Publishing<//>`;
  if (item.status === 'Withdrawn') {
    return html`<${Badge} kind="neutral">Withdrawn<//>
      ${item.status_reason && html`<p class="small">${item.status_reason}</p>`}`;
  }
  const progress = item.progress;
  return html`<${Badge} kind="busy">Downloading<//>
    ${progress &&
    html`<div class="download-progress">
      <progress max=${progress.chunks_total || 1} value=${progress.chunks_done}
        aria-label=${`Download of ${item.filename}`}></progress>
      <span class="small">
        ${progress.chunks_done}/${progress.chunks_total} chunks
        ${progress.rate ? ` · ${bytes(progress.rate)}/s` : ''}
        ${progress.source ? ` · from ${progress.source}` : ''}
      </span>
    </div>`}`;
}

function PackageDialog({ kind, item, onClose, onChanged }) {
  if (kind === 'details') return html`<${Details} item=${item} onClose=${onClose} />`;
  if (kind === 'stage') return html`<${StageDialog} item=${item} onClose=${onClose} onChanged=${onChanged} />`;
  if (kind === 'replace') {
    return html`<${ReplaceDialog} item=${item} onClose=${onClose} onChanged=${onChanged} />`;
  }
  if (kind === 'retry') {
    return html`<${Confirm} title=${`Retry ${item.filename}?`} confirmLabel="Retry"
      action=${async () => {
        await api.post(`/api/admin/packages/${item.id}/retry`);
        onChanged();
      }}
      onClose=${onClose}>
      <p>
        <strong>${item.filename}</strong> (${item.file_size_hr}) is fetched again now, from the
        server it came from or any other registered server that has it.
      </p>
      ${item.status_reason && html`<p class="small">It failed: ${item.status_reason}</p>`}
    <//>`;
  }
  return html`<${Confirm} title=${`Delete ${item.filename}?`} confirmLabel="Delete" danger
    action=${async () => {
      await api.del(`/api/admin/packages/${item.id}`);
      onChanged();
    }}
    onClose=${onClose}>
    <p>
      <strong>${item.filename}</strong> (${item.file_size_hr}, ${item.stage}) is removed from this
      server and from every registered server, and no server fetches this version again.
    </p>
  <//>`;
}

const CHUNKS_SHOWN = 64;

function Details({ item, onClose }) {
  const detail = useApi(() => api.get(`/api/admin/packages/${item.id}`), [item.id]);
  const [allChunks, setAllChunks] = useState(false);
  const data = detail.data || item;
  const chunks = detail.data ? detail.data.chunks : [];
  const shown = allChunks ? chunks : chunks.slice(0, CHUNKS_SHOWN);
  return html`<${Modal} title=${item.filename} onClose=${onClose} wide>
    <div class="modal-body stack">
      <${ErrorBanner} error=${detail.error} />
      <dl class="properties">
        <dt>Status</dt><dd><${PackageStatus} item=${data} /></dd>
        <dt>Stage</dt><dd><${StageBadge} stage=${data.stage} /></dd>
        <dt>Size</dt><dd>${data.file_size_hr} (${data.file_size.toLocaleString()} bytes)</dd>
        <dt>Created</dt><dd><${Time} iso=${data.created} /></dd>
        <dt>Origin</dt><dd><${Origin} item=${data} /></dd>
        <dt>UUID</dt><dd><code>${data.uuid}</code></dd>
        <dt>SHA1</dt><dd class="secret"><code>${data.sha1}</code><${CopyButton} value=${data.sha1} label="Copy SHA1" /></dd>
        <dt>SHA-256</dt><dd class="secret"><code>${data.sha256}</code><${CopyButton} value=${data.sha256} label="Copy SHA-256" /></dd>
        <dt>Download</dt>
        <dd>${data.status === 'Public'
          ? html`<a href=${shareUrl(data.filename)} download=${data.filename}>${shareUrl(data.filename)}</a>`
          : html`<span class="muted">once Public</span>`}</dd>
      </dl>
      <h3>Chunks ${detail.data && html`<span class="muted small">(${chunks.length} of 1 MiB, each checked by SHA-256)</span>`}</h3>
      ${detail.loading && !detail.data && html`<${Loading} />`}
      ${chunks.length > 0 &&
      html`<div class="table-wrap chunks">
        <table>
          <thead><tr><th scope="col">#</th><th scope="col">SHA1</th><th scope="col">SHA-256</th></tr></thead>
          <tbody>
            ${shown.map(
              (chunk) => html`<tr key=${chunk.index}>
                <td>${chunk.index}</td><td><code>${chunk.sha1}</code></td><td><code>${chunk.sha256}</code></td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>`}
      ${chunks.length > shown.length &&
      html`<button type="button" onClick=${() => setAllChunks(true)}>Show all ${chunks.length} chunks</button>`}
    </div>
    <footer class="modal-footer"><button type="button" onClick=${onClose}>Close</button></footer>
  <//>`;
}

// The server the package was uploaded to, and whether its signed statement
// verified here (see docs/security.md).
function Origin({ item }) {
  const { about } = useContext(About);
  const peers = useApi(() => api.get('/api/admin/registered_ods'), []);
  const items = peers.data ? peers.data.items : [];
  return html`${item.origin_iss
      ? html`<${ServerName} iss=${item.origin_iss} about=${about} peers=${items} />`
      : html`<span class="muted">not known</span>`}
    <br />
    ${item.origin_verified
      ? html`<${Badge} kind="ok">Origin signature verified<//>`
      : html`<${Badge} kind="warn">Not verified: received before servers signed packages<//>`}`;
}

function StageDialog({ item, onClose, onChanged }) {
  const [stage, setStage] = useState(item.stage);
  const rank = (value) => STAGE_RANK[value];
  const direction = rank(stage) > rank(item.stage) ? 'Promote' : rank(stage) < rank(item.stage) ? 'Demote' : null;
  return html`<${Confirm} title=${`Change the stage of ${item.filename}`}
    confirmLabel=${direction ? `${direction} to ${stage}` : 'Change stage'}
    action=${async () => {
      if (stage === item.stage) return;
      await api.patch(`/api/admin/packages/${item.id}`, { stage });
      onChanged();
    }}
    onClose=${onClose}>
    <${Field} id="stage-new" label="New stage">
      <select id="stage-new" value=${stage} onChange=${(e) => setStage(e.target.value)}>
        ${STAGES.map((value) => html`<option value=${value}>${value}</option>`)}
      </select>
    <//>
    <p class="hint">
      Now <strong>${item.stage}</strong>. Servers take packages of their own stage and above
      (${'Dev < Test < Prod'}): promoting copies it to the servers that now accept it.
    </p>
  <//>`;
}

function ReplaceDialog({ item, onClose, onChanged }) {
  const [file, setFile] = useState(null);
  const [stage, setStage] = useState(item.stage);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const upload = useUpload();

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      await upload.run(file, { stage, replace: true, filename: item.filename });
      setDone(true);
      onChanged();
      onClose();
    } catch (failure) {
      setError(failure);
    }
  };
  const close = () => {
    upload.abort();
    onClose();
  };

  return html`<${Modal} title=${`Replace ${item.filename}`} onClose=${close}>
    <${ModalForm} onSubmit=${submit} onCancel=${close} error=${error} busy=${upload.busy}
      busyLabel="Uploading…" label="Replace" danger disabled=${!file || done}>
      <p>
        The new file is published as <strong>${item.filename}</strong>, whatever its own name.
        The old version (${item.file_size_hr}) is deleted here and on every registered server.
      </p>
      <${Field} id="replace-file" label="Replacement file">
        <input id="replace-file" type="file" required disabled=${upload.busy}
          onChange=${(e) => setFile(e.target.files[0] || null)} />
      <//>
      <${Field} id="replace-stage" label="Stage">
        <select id="replace-stage" value=${stage} disabled=${upload.busy}
          onChange=${(e) => setStage(e.target.value)}>
          ${STAGES.map((value) => html`<option value=${value}>${value}</option>`)}
        </select>
      <//>
      ${upload.busy && html`<${UploadProgress} progress=${upload.progress} label="Replacement upload progress" />`}
    <//>
  <//>`;
}
