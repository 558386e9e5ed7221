// The admin API, as the console calls it. Every call the console makes goes
// through get/post/put/patch/del/upload/stream below, with the bearer token this
// tab holds in sessionStorage (never localStorage, never a cookie).

const TOKEN_KEY = 'ods.token';

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `The server answered ${status}.`;
    super(message);
    this.status = status;
    this.code = (body && body.error) || 'error';
    this.details = (body && body.details) || null;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

// The app registers what to do when the session ends (401) or the password
// must be changed first (403 password_change_required).
const handlers = { unauthorized: () => {}, passwordChangeRequired: () => {} };

export function onAuthProblem({ unauthorized, passwordChangeRequired }) {
  handlers.unauthorized = unauthorized;
  handlers.passwordChangeRequired = passwordChangeRequired;
}

const NETWORK_ERROR = {
  error: 'network',
  message: 'The server did not answer. Check that ODS is running and reachable, then try again.',
};

function authHeaders(extra = {}) {
  const headers = { Accept: 'application/json', ...extra };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function failed(status, body, path) {
  const error = new ApiError(status, body);
  if (status === 401 && path !== '/api/auth/login') handlers.unauthorized(error);
  if (status === 403 && error.code === 'password_change_required') {
    handlers.passwordChangeRequired(error);
  }
  return error;
}

async function request(method, path, body) {
  const extra = body === undefined ? {} : { 'Content-Type': 'application/json' };
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: authHeaders(extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, NETWORK_ERROR);
  }
  const answer = parse(await response.text());
  if (!response.ok) throw failed(response.status, answer, path);
  return answer;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body ?? {});
export const put = (path, body) => request('PUT', path, body);
export const patch = (path, body) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

// A file upload with progress: XMLHttpRequest, because fetch() reports no
// upload progress. `onProgress(loaded, total)`; returns {promise, abort}.
export function upload(path, form, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.total);
    xhr.onload = () => {
      const answer = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
      else reject(failed(xhr.status, answer, path));
    };
    xhr.onerror = () => reject(new ApiError(0, NETWORK_ERROR));
    xhr.onabort = () =>
      reject(new ApiError(0, { error: 'aborted', message: 'Upload cancelled; nothing was saved.' }));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// Server-sent events over fetch() (EventSource cannot send the Authorization
// header). Reconnects with back-off and resumes after the last id seen.
// Returns stop().
export function stream(path, { after, onEvent, onState }) {
  let stopped = false;
  let controller = null;
  let lastId = after;
  let delay = 1000;

  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const extra = { Accept: 'text/event-stream' };
        if (lastId !== null && lastId !== undefined) extra['Last-Event-ID'] = String(lastId);
        const response = await fetch(path, {
          headers: authHeaders(extra),
          signal: controller.signal,
          cache: 'no-store',
        });
        if (response.status === 401 || response.status === 403) {
          failed(response.status, parse(await response.text()), path);
          onState('stopped');
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        onState('live');
        delay = 1000;
        await readEvents(response.body, (event) => {
          lastId = event.id;
          onEvent(event);
        });
      } catch {
        // A dropped connection or a restarting server: try again below.
      }
      if (stopped) return;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * 500));
      delay = Math.min(delay * 2, 30000);
    }
  }

  connect();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let fields = { id: null, event: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (fields.data.length) {
          const event = parse(fields.data.join('\n'));
          if (event) dispatch(event);
        }
        fields = { id: null, event: null, data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') fields.data.push(value);
        else if (name === 'id' || name === 'event') fields[name] = value;
      }
    }
  }
}
