// Uploading packages with a progress bar: the upload card and the replace dialog.

import { html, useRef, useState } from './vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { Banner, ErrorBanner, Field, STAGES, bytes } from './ui.js';

// One upload at a time: {run(file, {stage, replace, filename}), abort(), progress, busy}.
// progress = {loaded, total, rate} with rate in bytes/s over the last seconds.
export function useUpload() {
  const [progress, setProgress] = useState(null);
  const [busy, setBusy] = useState(false);
  const current = useRef(null);

  const run = async (file, { stage, replace, filename }) => {
    const form = new FormData();
    form.append('stage', stage);
    form.append('file', file, filename || file.name);
    const samples = [[performance.now(), 0]];
    setBusy(true);
    setProgress({ loaded: 0, total: file.size, rate: 0 });
    const query = replace ? '?replace=true' : '';
    const transfer = api.upload(`/api/admin/packages${query}`, form, (loaded, total) => {
      const now = performance.now();
      samples.push([now, loaded]);
      while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
      const [since, from] = samples[0];
      const rate = now > since ? ((loaded - from) * 1000) / (now - since) : 0;
      setProgress({ loaded, total, rate });
    });
    current.current = transfer;
    try {
      return await transfer.promise;
    } finally {
      current.current = null;
      setBusy(false);
    }
  };
  const abort = () => current.current && current.current.abort();
  return { run, abort, progress, busy };
}

export function UploadProgress({ progress, label }) {
  if (!progress) return null;
  const { loaded, total, rate } = progress;
  const percent = total ? Math.floor((loaded / total) * 100) : 0;
  const sending = loaded < total;
  return html`<div class="upload-progress">
    <progress max=${total || 1} value=${loaded} aria-label=${label}></progress>
    <p class="small" aria-live="polite">
      ${sending
        ? `${percent}% · ${bytes(loaded)} of ${bytes(total)} · ${bytes(Math.round(rate))}/s`
        : `${bytes(total)} sent · the server checks and publishes it…`}
    </p>
  </div>`;
}

export function UploadCard({ defaultStage, onUploaded }) {
  const [files, setFiles] = useState([]);
  const [stage, setStage] = useState(defaultStage || 'Prod');
  const [replace, setReplace] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [position, setPosition] = useState(null);
  const [done, setDone] = useState([]);
  const [error, setError] = useState(null);
  const upload = useUpload();
  const input = useRef(null);

  const choose = (list) => {
    setFiles(Array.from(list || []));
    setDone([]);
    setError(null);
  };
  const drop = (event) => {
    event.preventDefault();
    setDragging(false);
    if (!upload.busy) choose(event.dataTransfer.files);
  };
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    setDone([]);
    const finished = [];
    for (const [index, file] of files.entries()) {
      setPosition({ index, count: files.length, name: file.name });
      try {
        const answer = await upload.run(file, { stage, replace });
        finished.push(answer);
        setDone([...finished]);
        onUploaded();
      } catch (failure) {
        if (failure.status === 409 && !replace) {
          failure.message += ' To upload it anyway, tick “Replace a package of the same name”.';
        }
        setError(failure);
        break;
      }
    }
    setPosition(null);
    const left = files.filter((file) => !finished.some((answer) => answer.filename === file.name));
    setFiles(left);
    if (!left.length && input.current) input.current.value = '';
  };

  const names = files.map((file) => `${file.name} (${bytes(file.size)})`).join(', ');
  return html`<section class="card" aria-labelledby="upload-title">
    <h2 id="upload-title">Upload</h2>
    <${ErrorBanner} error=${error} onClose=${() => setError(null)} />
    ${done.length > 0 &&
    html`<${Banner} kind="success" onClose=${() => setDone([])}>
      ${done.map(
        (answer) => html`<span class="block">
          ${answer.replaced ? 'Replaced' : 'Uploaded'} <strong>${answer.filename}</strong>${' '}
          (${answer.stage}, ${answer.status}) · SHA1 <code>${answer.sha1}</code>
        </span>`,
      )}
    <//>`}
    <form onSubmit=${submit} class="upload-form">
      <div class=${`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver=${(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave=${() => setDragging(false)}
        onDrop=${drop}>
        <label for="upload-file">
          <strong>Drop packages here</strong> or choose them
        </label>
        <input id="upload-file" ref=${input} type="file" multiple disabled=${upload.busy}
          aria-label="Package file" onChange=${(e) => choose(e.target.files)} />
        <p class="small muted">${names || '.pkg, .dmg, .msi, scripts: any file'}</p>
      </div>
      <div class="upload-options">
        <${Field} id="upload-stage" label="Stage">
          <select id="upload-stage" value=${stage} disabled=${upload.busy}
            onChange=${(e) => setStage(e.target.value)}>
            ${STAGES.map((value) => html`<option value=${value}>${value}</option>`)}
          </select>
        <//>
        <div class="field checkbox">
          <input id="upload-replace" type="checkbox" checked=${replace} disabled=${upload.busy}
            onChange=${(e) => setReplace(e.target.checked)} />
          <label for="upload-replace">Replace a package of the same name</label>
        </div>
        <div class="actions">
          <button type="submit" class="primary" disabled=${upload.busy || !files.length}>
            ${upload.busy ? 'Uploading…' : 'Upload'}
          </button>
          ${upload.busy && html`<button type="button" onClick=${upload.abort}>Cancel</button>`}
        </div>
      </div>
    </form>
    ${position &&
    html`<div>
      <p class="small">
        ${position.count > 1 ? `${position.index + 1} of ${position.count}: ` : ''}<strong>${position.name}</strong>
      </p>
      <${UploadProgress} progress=${upload.progress} label="Upload progress" />
    </div>`}
  </section>`;
}
