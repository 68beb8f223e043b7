import {
  API_KEY_FIELD,
  DEFAULT_OPERATION,
  IMAGE_TYPES,
  OPERATION_DESCRIPTIONS,
  OPERATIONS,
  UPLOAD_FIELD,
  type Operation,
  type TaskState,
  type TaskStatus,
} from '@pixelmill/contracts';
import { IMAGE_TYPE_NAMES } from '../domain/image-upload';

/** What the page shows under the form: an image's state, or why it cannot be shown. */
export type PageStatus =
  | { kind: 'task'; status: TaskStatus }
  | { kind: 'problem'; message: string; id?: string; retry: boolean }
  /** API keys are on: only the key that uploaded the image may see it, and a link carries no key. */
  | { kind: 'locked'; id: string };

export interface PageModel {
  maxUploadBytes: number;
  refreshSeconds: number;
  /** Whether the API needs a key: the form then has a field for it. */
  apiKeys?: boolean;
  status?: PageStatus;
}

const FINAL_STATES: readonly TaskState[] = ['finished', 'failed'];

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Everything put into the page goes through here, text and attribute values alike. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** An operation as the picker shows it: its name and what it does. */
export const operationLabel = (op: Operation): string => `${op} — ${OPERATION_DESCRIPTIONS[op]}`;

export const resultUrl = (id: string): string => `/image/get?id=${encodeURIComponent(id)}`;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
  if (bytes >= 1024) return `${Math.round((bytes / 1024) * 10) / 10} KB`;
  return `${bytes} bytes`;
}

/** Whether the status can still change, so the page should look again. */
export function keepsChanging(status: PageStatus | undefined): boolean {
  if (!status || status.kind === 'locked') return false;
  return status.kind === 'problem' ? status.retry : !FINAL_STATES.includes(status.status.state);
}

function renderTask({ id, state, error }: TaskStatus): string {
  const lines = [
    `<p>Image <code>${escapeHtml(id)}</code>: <strong class="state" data-state="${escapeHtml(state)}">${escapeHtml(state.replace('_', ' '))}</strong></p>`,
  ];
  if (state === 'finished') {
    const url = escapeHtml(resultUrl(id));
    lines.push(`<p><img src="${url}" alt="The processed image"></p>`, `<p><a href="${url}" download>Download the result</a></p>`);
  } else if (state === 'failed') {
    lines.push(`<p role="alert">Why: ${escapeHtml(error ?? 'no reason given')}</p>`);
  } else {
    lines.push('<p>The result appears here when it is ready.</p>');
  }
  return lines.join('\n      ');
}

function renderLocked(id: string): string {
  return [
    `<p>Image <code>${escapeHtml(id)}</code> is shown only with the API key that uploaded it, and a link cannot carry a key.</p>`,
    '<p>Enter that key above to follow the image here (this needs JavaScript), or ask the API with the key in a header:',
    `<code>GET ${escapeHtml(`/image/isReady?id=${encodeURIComponent(id)}`)}</code> with <code>X-API-Key: &lt;key&gt;</code>.</p>`,
  ].join('\n      ');
}

function renderStatus(status: PageStatus | undefined): string {
  if (!status) return '';
  if (status.kind === 'problem') return `<p role="alert">${escapeHtml(status.message)}</p>`;
  if (status.kind === 'locked') return renderLocked(status.id);
  return renderTask(status.status);
}

/**
 * The upload page. It works without JavaScript (a plain form; the status reloads itself);
 * /app.js, when it runs, uploads with fetch and polls instead. No inline script or style,
 * so the page runs under a strict Content-Security-Policy.
 */
export function renderUploadPage({ maxUploadBytes, refreshSeconds, apiKeys = false, status }: PageModel): string {
  const polling = keepsChanging(status);
  const id = status?.kind === 'task' ? status.status.id : status?.id;
  const statusAttributes = [
    id === undefined ? '' : ` data-id="${escapeHtml(id)}"`,
    polling ? ' data-poll="true"' : '',
    status?.kind === 'locked' ? ' data-needs-key="true"' : '',
  ].join('');
  // First in the form, so a form posted without JavaScript sends the key before the file and is
  // checked before the file is read. The op comes before the file too: the file then goes on to
  // master as it arrives, rather than held until the form ends.
  const keyField = apiKeys
    ? `
        <p>
          <label for="api-key">API key</label>
          <input id="api-key" type="password" name="${API_KEY_FIELD}" autocomplete="off" required>
        </p>`
    : '';
  // Each operation with what it does, in the option itself: a plain select, which needs no script.
  const options = OPERATIONS.map(
    (op) => `<option value="${escapeHtml(op)}"${op === DEFAULT_OPERATION ? ' selected' : ''}>${escapeHtml(operationLabel(op))}</option>`,
  ).join('\n          ');

  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>pixelmill</title>${polling ? `\n    <noscript><meta http-equiv="refresh" content="${refreshSeconds}"></noscript>` : ''}
    <link rel="icon" href="/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/style.css">
    <script src="/app.js" defer></script>
  </head>
  <body>
    <main>
      <h1>pixelmill</h1>
      <form id="upload-form" method="post" action="/newImage" enctype="multipart/form-data" data-max-bytes="${maxUploadBytes}">${keyField}
        <p>
          <label for="op">Operation</label>
          <select id="op" name="op">
          ${options}
          </select>
        </p>
        <p>
          <label for="image">Image (${escapeHtml(IMAGE_TYPE_NAMES.join(', '))}, up to ${escapeHtml(formatBytes(maxUploadBytes))})</label>
          <input id="image" type="file" name="${UPLOAD_FIELD}" accept="${IMAGE_TYPES.join(',')}" required>
        </p>
        <p><button type="submit">Upload</button></p>
      </form>
      <section id="status" aria-label="Image status" aria-live="polite"${statusAttributes}>
      ${renderStatus(status)}
      </section>
    </main>
    <footer><p><a href="/docs">API documentation</a></p></footer>
  </body>
</html>
`;
}
