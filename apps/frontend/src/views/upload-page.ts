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

/** The operation whose upload takes a width and a height; it may not be in OPERATIONS yet. */
export const RESIZE_OPERATION = 'resize';

/** "PNG, JPEG, BMP or GIF" */
const typeList = (names: readonly string[]): string =>
  names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;

/**
 * The upload page. It works without JavaScript: a plain form of one image, and a status page
 * (`/?id=`) that reloads itself. /app.js, when it runs, takes several images at once (chosen or
 * dropped), uploads them one or two at a time with their progress, and follows each on its own
 * card; /op-preview.js draws what the chosen operation does to a sample. No inline script or
 * style, so the page runs under a strict Content-Security-Policy.
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
  // checked before the file is read. The op and the size come before the file too: the file then
  // goes on to master as it arrives, rather than held until the form ends.
  const keyField = apiKeys
    ? `
        <div class="field">
          <label for="api-key">API key</label>
          <input id="api-key" type="password" name="${API_KEY_FIELD}" autocomplete="off" required>
        </div>`
    : '';
  // Each operation with what it does, in the option itself: a plain select, which needs no script.
  const options = OPERATIONS.map(
    (op) => `<option value="${escapeHtml(op)}"${op === DEFAULT_OPERATION ? ' selected' : ''}>${escapeHtml(operationLabel(op))}</option>`,
  ).join('\n            ');
  const types = escapeHtml(typeList(IMAGE_TYPE_NAMES));
  const limit = escapeHtml(formatBytes(maxUploadBytes));

  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>pixelmill</title>${polling ? `\n    <noscript><meta http-equiv="refresh" content="${refreshSeconds}"></noscript>` : ''}
    <link rel="icon" href="/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/style.css">
    <script src="/app.js" defer></script>
    <script src="/op-preview.js" defer></script>
  </head>
  <body>
    <header class="masthead">
      <h1>pixelmill</h1>
      <p>Upload images, pick what to do to them, and download the results.</p>
    </header>
    <main>
      <form id="upload-form" class="panel" method="post" action="/newImage" enctype="multipart/form-data" data-max-bytes="${maxUploadBytes}" data-resize-op="${RESIZE_OPERATION}">${keyField}
        <div class="field operation">
          <div class="operation-choice">
            <label for="op">Operation</label>
            <select id="op" name="op">
            ${options}
            </select>
          </div>
          <figure id="op-preview" class="op-preview" hidden>
            <div class="op-preview-pictures">
              <canvas id="op-preview-before" width="96" height="64" role="img" aria-label="A sample picture"></canvas>
              <span class="op-preview-arrow" aria-hidden="true">→</span>
              <canvas id="op-preview-after" width="96" height="64" role="img" aria-label="The sample picture after the operation"></canvas>
            </div>
            <figcaption id="op-preview-caption"></figcaption>
          </figure>
        </div>
        <fieldset id="resize-fields" class="field resize-fields">
          <legend>Size</legend>
          <p id="resize-hint" class="hint">For the ${RESIZE_OPERATION} operation only: a width, a height or both, in pixels. Leave them empty for the others.</p>
          <div class="size-inputs">
            <p>
              <label for="width">Width (px)</label>
              <input id="width" type="number" name="width" min="1" step="1" inputmode="numeric" aria-describedby="resize-hint">
            </p>
            <p>
              <label for="height">Height (px)</label>
              <input id="height" type="number" name="height" min="1" step="1" inputmode="numeric" aria-describedby="resize-hint">
            </p>
          </div>
        </fieldset>
        <div id="drop-zone" class="field drop-zone">
          <label for="image"><span id="image-title" data-many="Images">Image</span>
            <span class="hint">${types}, up to ${limit}<span class="js-only" hidden> each. Drop them here, or choose them</span>.</span></label>
          <input id="image" type="file" name="${UPLOAD_FIELD}" accept="${IMAGE_TYPES.join(',')}" required>
          <p id="selection" class="selection" hidden></p>
        </div>
        <p class="actions"><button id="upload" type="submit">Upload</button></p>
      </form>
      <section id="status" aria-label="Image status" aria-live="polite"${statusAttributes}>
      ${renderStatus(status)}
      </section>
      <section id="uploads" class="uploads" aria-labelledby="uploads-title" hidden>
        <div class="uploads-head">
          <h2 id="uploads-title">Your images</h2>
          <button id="clear-list" type="button" class="quiet">Clear the list</button>
        </div>
        <p class="hint">This browser remembers the last 50 images you uploaded here.</p>
        <ol id="cards" class="cards"></ol>
      </section>
      <div id="announcer" class="visually-hidden" aria-live="polite"></div>
    </main>
    <footer><p><a href="/docs">API documentation</a></p></footer>
  </body>
</html>
`;
}
