// Enhances the upload page: several images at once (chosen or dropped), each on a card that shows
// its upload's progress, then its state through the long poll, then the original and the result
// side by side. The list is kept in this browser (localStorage), so it comes back after a reload.
// The page works without this script too: the form posts one image and the status page
// (/?id=) refreshes itself.
'use strict';

(() => {
  // Long poll: the server answers as soon as the image is done, else after this long (so that
  // the move from not_started to in_progress shows).
  const LONG_POLL_MS = 3000;
  // However soon the server answers (one that does not hold long polls), a card asks at most this often.
  const MIN_POLL_GAP_MS = 1000;
  // Each long poll holds a connection, and a browser opens 6 per server over HTTP/1.1: 3 polls
  // and 2 uploads at most leave one for the rest (results, the page's own files).
  const MAX_POLLS = 3;
  const MAX_UPLOADS = 2;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 30_000;
  const FINAL_STATES = ['finished', 'failed'];
  const STORE_KEY = 'pixelmill.uploads';
  const MAX_ENTRIES = 50;
  // A thumbnail of the original is kept with each entry so the before view survives a reload.
  const THUMB_MAX_CHARS = 20 * 1024;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
  const STATE_LABELS = {
    checking: 'asking pixelmill…',
    queued: 'waiting to upload',
    uploading: 'uploading',
    not_started: 'not started',
    in_progress: 'in progress',
    finished: 'finished',
    failed: 'failed',
    refused: 'not uploaded',
    gone: 'expired',
    unknown: 'unknown',
    locked: 'needs the API key',
  };
  const STATE_DETAILS = {
    not_started: 'Uploaded; waiting for a worker.',
    in_progress: 'A worker is on it.',
  };
  // Told to screen readers as they happen; the steps of an upload show on its card only.
  const QUIET_STATES = ['checking', 'queued', 'uploading'];

  const form = document.getElementById('upload-form');
  const status = document.getElementById('status');
  if (!form || !status || !window.fetch || !window.XMLHttpRequest || !window.FormData) return;
  document.documentElement.classList.add('js');

  const fileInput = form.elements.namedItem('image');
  const opSelect = form.elements.namedItem('op');
  const button = document.getElementById('upload');
  const dropZone = document.getElementById('drop-zone');
  const selection = document.getElementById('selection');
  const resizeFields = document.getElementById('resize-fields');
  const widthInput = form.elements.namedItem('width');
  const heightInput = form.elements.namedItem('height');
  const uploadsSection = document.getElementById('uploads');
  const cardList = document.getElementById('cards');
  const clearButton = document.getElementById('clear-list');
  const announcer = document.getElementById('announcer');
  // Only there when the server needs API keys. The key goes as a header, never in a URL nor in
  // this browser's storage; a result is then fetched with it and shown from memory, since an
  // <img> cannot send it.
  const keyInput = form.elements.namedItem('apiKey');
  const keyHeaders = () => (keyInput && keyInput.value ? { 'X-API-Key': keyInput.value } : {});
  const maxBytes = Number(form.dataset.maxBytes) || 0;
  const imageTypes = (fileInput.accept || '').split(',').filter(Boolean);
  const resizeOp = form.dataset.resizeOp || 'resize';

  // --- small helpers ---

  const el = (tag, attributes = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  };
  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  const resultUrl = (id) => `/image/get?id=${encodeURIComponent(id)}`;
  const formatBytes = (bytes) => {
    if (bytes >= 1024 * 1024) return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
    if (bytes >= 1024) return `${Math.round((bytes / 1024) * 10) / 10} KB`;
    return `${bytes} bytes`;
  };
  const typeName = (type) => type.replace('image/', '').toUpperCase();
  const typeNames = imageTypes
    .map(typeName)
    .join(', ')
    .replace(/, ([^,]*)$/, ' or $1');
  /** The extension of a result: it keeps the original's format. */
  const extensionOf = (type) => ({ 'image/jpeg': 'jpg' })[type] || (type.split('/')[1] || 'bin').replace(/[^a-z0-9]/gi, '');
  const randomKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

  /** The message of pixelmill's JSON error body, or the status when there is none. */
  const errorMessage = (status, text) => {
    try {
      const body = JSON.parse(text);
      if (body && body.error && body.error.message) return body.error.message;
    } catch {
      // not JSON: fall through
    }
    return `the server answered ${status}`;
  };
  /** A message as a sentence of its own: a capital first, a full stop last. */
  const sentence = (text) => `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;
  const readError = async (response) => errorMessage(response.status, await response.text().catch(() => ''));

  /** Retry-After in seconds (it may be a date). */
  const retryAfterSeconds = (value) => {
    if (!value) return undefined;
    const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : undefined;
  };

  /** At most `max` at once; the others wait their turn, first come first served. */
  const limiter = (max) => {
    let active = 0;
    const waiting = [];
    return {
      acquire: () =>
        new Promise((resolve) => {
          if (active < max) {
            active += 1;
            resolve();
          } else waiting.push(resolve);
        }),
      release: () => {
        const next = waiting.shift();
        if (next) next();
        else active -= 1;
      },
    };
  };
  const polls = limiter(MAX_POLLS);
  const uploads = limiter(MAX_UPLOADS);

  /** State changes go to one polite live region, so a screen reader tells them without moving focus. */
  const announce = (text) => {
    announcer.append(el('p', {}, text));
    while (announcer.childElementCount > 3) announcer.firstElementChild.remove();
  };

  // --- the list kept in this browser ---

  const validEntry = (e) =>
    e &&
    typeof e.id === 'string' &&
    UUID.test(e.id) &&
    typeof e.name === 'string' &&
    typeof e.op === 'string' &&
    typeof e.uploadedAt === 'string' &&
    (e.thumb === undefined || (typeof e.thumb === 'string' && e.thumb.startsWith('data:image/') && e.thumb.length <= THUMB_MAX_CHARS));

  const loadEntries = () => {
    try {
      const list = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
      return Array.isArray(list) ? list.filter(validEntry).slice(0, MAX_ENTRIES) : [];
    } catch {
      return []; // storage off, or not ours
    }
  };

  const cards = []; // newest first, as shown
  const entryOf = (card) => ({
    id: card.id,
    name: card.name,
    size: card.size,
    type: card.type,
    op: card.op,
    ...(card.width ? { width: card.width } : {}),
    ...(card.height ? { height: card.height } : {}),
    uploadedAt: card.uploadedAt,
    ...(card.thumb ? { thumb: card.thumb } : {}),
  });
  const saveEntries = () => {
    const entries = cards
      .filter((card) => card.id)
      .slice(0, MAX_ENTRIES)
      .map(entryOf);
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(entries));
    } catch {
      // Full: the list without its thumbnails is small.
      try {
        localStorage.setItem(STORE_KEY, JSON.stringify(entries.map((entry) => ({ ...entry, thumb: undefined }))));
      } catch {
        // storage off: the list lives as long as the page
      }
    }
  };

  /** A small JPEG of the original, as a data URL of at most THUMB_MAX_CHARS, or undefined. */
  const makeThumb = async (img) => {
    try {
      await img.decode();
    } catch {
      return undefined; // a format this browser does not show
    }
    for (const [side, quality] of [
      [160, 0.8],
      [96, 0.6],
    ]) {
      const scale = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
      const canvas = el('canvas');
      canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff'; // JPEG has no transparency
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      const url = canvas.toDataURL('image/jpeg', quality);
      if (url.startsWith('data:image/jpeg') && url.length <= THUMB_MAX_CHARS) return url;
    }
    return undefined;
  };

  /** A data URL as an object URL: the page's CSP allows blob: images, not data: ones. */
  const objectUrlOf = (dataUrl) => {
    try {
      const [head, base64] = dataUrl.split(',');
      const type = /^data:(image\/[a-z0-9.+-]+);base64$/i.exec(head)?.[1];
      if (!type) return '';
      const binary = atob(base64);
      const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      return URL.createObjectURL(new Blob([bytes], { type }));
    } catch {
      return '';
    }
  };

  // --- cards ---

  let cardCount = 0;

  const positive = (value) => (Number.isInteger(value) && value > 0 ? value : undefined);

  /** A card for one image: `source` is a File being uploaded, or an entry from the list (checked, not trusted). */
  const createCard = (source) => {
    const n = (cardCount += 1);
    const card = {
      key: `card-${n}`,
      id: source.id,
      name: source.name.slice(0, 200) || 'image',
      size: positive(source.size),
      type: typeof source.type === 'string' ? source.type : '',
      op: source.op.slice(0, 50),
      width: positive(source.width),
      height: positive(source.height),
      uploadedAt: Number.isNaN(Date.parse(source.uploadedAt)) ? undefined : source.uploadedAt,
      thumb: source.thumb,
      file: source.file,
      idempotencyKey: randomKey(),
      state: '',
      urls: [],
      controller: new AbortController(),
      removed: false,
      // A card from the list is not told to screen readers until its state changes while shown.
      quiet: Boolean(source.id),
      following: false,
    };
    card.meta = el('p', { class: 'card-meta' });
    showMeta(card);
    const titleId = `${card.key}-name`;
    card.badge = el('span', { class: 'state' });
    card.detail = el('span', { class: 'state-detail' });
    card.progressLabel = el('label', { for: `${card.key}-progress` }, `Upload of ${card.name}`);
    card.progress = el('progress', { id: `${card.key}-progress`, max: '100', value: '0' });
    card.progressRow = el('div', { class: 'card-progress', hidden: '' }, card.progressLabel, card.progress);
    card.error = el('p', { class: 'card-error', hidden: '' });
    card.original = el('img', { class: 'original', alt: `${card.name}, as uploaded` });
    card.originalBox = el('div', { class: 'picture empty' }, el('span', { class: 'placeholder' }, 'No preview'));
    card.result = el('img', { class: 'result', alt: `${card.name} after ${card.op}` });
    card.resultBox = el('div', { class: 'picture empty' }, el('span', { class: 'placeholder' }, 'The result appears here'));
    card.originalCaption = el('figcaption', {}, 'Original');
    card.originalFigure = el('figure', { class: 'original-figure' }, card.originalBox, card.originalCaption);
    card.actions = el('div', { class: 'card-actions' });
    card.removeButton = el('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${card.name} from the list` }, 'Remove');
    card.node = el(
      'li',
      { class: 'card', id: card.key, 'aria-labelledby': titleId },
      el(
        'div',
        { class: 'card-head' },
        el('div', { class: 'card-title' }, el('h3', { id: titleId }, card.name), card.meta),
        card.removeButton,
      ),
      el('p', { class: 'card-state' }, card.badge, ' ', card.detail),
      card.progressRow,
      card.error,
      el(
        'div',
        { class: 'compare' },
        card.originalFigure,
        el('figure', { class: 'result-figure' }, card.resultBox, el('figcaption', {}, `Result (${card.op})`)),
      ),
      card.actions,
    );
    card.removeButton.addEventListener('click', () => removeCard(card, true));
    return card;
  };

  /** Size, operation (and size asked), and when it was uploaded once it was. */
  const showMeta = (card) => {
    const parts = [card.size ? formatBytes(card.size) : '', card.op];
    if (card.op === resizeOp && (card.width || card.height)) parts.push(`to ${card.width || 'auto'} × ${card.height || 'auto'} px`);
    card.meta.replaceChildren(parts.filter(Boolean).join(' · '));
    if (card.uploadedAt) {
      const when = new Date(card.uploadedAt);
      const sameDay = when.toDateString() === new Date().toDateString();
      const shown = sameDay ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : when.toLocaleString();
      card.meta.append(' · uploaded ', el('time', { datetime: card.uploadedAt }, shown));
    }
  };

  const addCard = (card) => {
    cards.unshift(card);
    cardList.prepend(card.node);
    uploadsSection.hidden = false;
    // The list is capped: past it, the oldest card that no longer changes goes.
    for (let i = cards.length - 1; cards.length > MAX_ENTRIES && i >= 0; i -= 1) {
      if (['finished', 'failed', 'refused', 'gone', 'unknown'].includes(cards[i].state)) removeCard(cards[i], false);
    }
  };

  const setState = (card, state, detail = STATE_DETAILS[state] || '') => {
    const changed = card.state !== state;
    card.state = state;
    card.node.dataset.state = state;
    card.badge.dataset.state = state;
    card.badge.textContent = STATE_LABELS[state] || state.replace('_', ' ');
    card.detail.textContent = detail;
    if (changed && !card.quiet && !QUIET_STATES.includes(state)) announce(`${card.name}: ${card.badge.textContent}`);
  };

  const showError = (card, text, { tell = true } = {}) => {
    card.error.textContent = text;
    card.error.hidden = !text;
    if (text && tell && !card.quiet) announce(`${card.name}: ${text}`);
  };

  const showPicture = (box, img, src, onFail) => {
    img.onload = () => box.classList.remove('empty', 'broken');
    img.onerror = () => {
      box.classList.remove('empty');
      box.classList.add('broken');
      onFail?.();
    };
    img.src = src;
    box.replaceChildren(img, el('span', { class: 'placeholder' }, 'This browser cannot show it'));
  };

  const setActions = (card, ...nodes) => card.actions.replaceChildren(...nodes);

  const removeCard = (card, byUser) => {
    const index = cards.indexOf(card);
    if (index < 0) return;
    card.removed = true;
    card.controller.abort();
    card.xhr?.abort();
    for (const url of card.urls) URL.revokeObjectURL(url);
    cards.splice(index, 1);
    const focusNext = byUser && card.node.contains(document.activeElement);
    card.node.remove();
    saveEntries();
    if (cards.length === 0) uploadsSection.hidden = true;
    if (byUser) announce(`${card.name} removed from the list`);
    // Focus goes to the next card's button (or the one before, or the file chooser), not to the page's top.
    if (focusNext) {
      const next = cards[index] || cards[index - 1];
      if (next) next.removeButton.focus();
      else fileInput.focus();
    }
  };

  // --- following a task ---

  /** Shows the result: its URL, or with a key, the bytes fetched with the key and shown from memory. */
  const showResult = async (card) => {
    // The result keeps the original's format, so its extension too.
    const [, stem, extension] = /^(.*?)(?:\.([a-z0-9]{1,5}))?$/i.exec(card.name);
    const download = `${stem || 'image'}-${card.op}.${extension || extensionOf(card.type)}`;
    const headers = keyHeaders();
    let src = resultUrl(card.id);
    if (headers['X-API-Key']) {
      const response = await fetch(src, { headers, signal: card.controller.signal });
      if (response.status === 404 || response.status === 410) return gone(card, response.status, await readError(response));
      if (!response.ok) throw new Error(await readError(response));
      const blob = await response.blob();
      src = URL.createObjectURL(blob);
      card.urls.push(src);
    }
    const link = el('a', { href: src, download, class: 'button' }, 'Download the result');
    link.setAttribute('aria-label', `Download the result of ${card.name}`);
    showPicture(card.resultBox, card.result, src, () => {
      card.resultBox.querySelector('.placeholder').textContent =
        'It cannot be shown here (a format this browser does not show, or it has expired): try the download.';
    });
    setActions(card, link);
  };

  /** 410: its files were deleted after the retention time; 404: forgotten since, or another key's. */
  const gone = (card, status, message) => {
    setState(card, status === 410 ? 'gone' : 'unknown', '');
    showError(
      card,
      status === 410
        ? sentence(message)
        : `pixelmill does not know this image (any more), or another API key uploaded it: ${message.replace(/\.$/, '')}.`,
    );
  };

  /**
   * Follows a card's task until it is final: one request at a time per card, at most MAX_POLLS in
   * all, each long-polling; waits longer after each error (with jitter), up to RETRY_MAX_MS.
   */
  const follow = async (card) => {
    if (card.following) return;
    card.following = true;
    try {
      await followTurns(card);
    } finally {
      card.following = false;
      card.quiet = false;
    }
  };

  const followTurns = async (card) => {
    const { signal } = card.controller;
    let failures = 0;
    let last = 0;
    let first = true;
    for (; !card.removed; card.quiet = false) {
      await sleep(last + MIN_POLL_GAP_MS - Date.now(), signal);
      await polls.acquire();
      let outcome;
      try {
        if (card.removed) return;
        last = Date.now();
        const response = await fetch(`/image/isReady?id=${encodeURIComponent(card.id)}&waitMs=${first ? 0 : LONG_POLL_MS}`, {
          headers: { Accept: 'application/json', ...keyHeaders() },
          signal,
        });
        outcome = { response, text: await response.text() };
      } catch {
        outcome = {}; // unreachable, or removed
      } finally {
        polls.release();
      }
      if (card.removed) return;
      const { response, text } = outcome;
      let task;
      try {
        task = response && response.ok ? JSON.parse(text) : undefined;
      } catch {
        // not the JSON of a task: as if unreachable
      }
      if (task) {
        first = false;
        failures = 0;
        showError(card, '');
        if (task.state !== card.state) {
          setState(card, task.state);
          if (task.state === 'failed') showError(card, `Why: ${task.error || 'no reason given'}`);
          if (task.state === 'finished') {
            try {
              await showResult(card);
            } catch (err) {
              if (!card.removed) showError(card, `The result cannot be shown: ${err.message}`);
            }
          }
        }
        if (FINAL_STATES.includes(task.state)) return;
        continue;
      }
      if (response && (response.status === 404 || response.status === 410))
        return gone(card, response.status, errorMessage(response.status, text));
      if (response && response.status === 401) {
        // Followed again once a key is entered (see keyInput below).
        setState(card, 'locked', '');
        showError(card, `Enter the API key that uploaded this image to see it: ${errorMessage(401, text)}`);
        return;
      }
      if (response && !response.ok && response.status < 500 && response.status !== 429) {
        setState(card, 'refused', '');
        return showError(card, `Cannot follow this image: ${errorMessage(response.status, text)}`);
      }
      failures += 1;
      const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
      const wait = Math.max(backoff, (retryAfterSeconds(response?.headers.get('Retry-After')) || 0) * 1000);
      const why = response ? errorMessage(response.status, text) : 'no answer';
      showError(card, `pixelmill cannot be reached right now (${why}); trying again in ${Math.ceil(wait / 1000)} s.`, { tell: false });
      await sleep(wait, signal);
    }
  };

  // --- uploading ---

  /** Why a file is refused before it is sent, or '' when it may go. */
  const refusalOf = (file) => {
    if (maxBytes && file.size > maxBytes) return `Too large: ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}.`;
    // The browser's guess from the name; the server judges by the content, as it does when there is no guess.
    if (file.type && imageTypes.length && !imageTypes.includes(file.type)) {
      return `Not an image pixelmill takes (this is ${file.type}); it takes ${typeNames}.`;
    }
    if (file.size === 0) return 'The file is empty.';
    return '';
  };

  /** What the server's refusal of an upload means for the user. */
  const uploadRefusal = (status, text, retryAfter) => {
    const message = errorMessage(status, text).replace(/\.$/, '');
    if (status === 413) return `Too large: ${message}.`;
    if (status === 415) return `Not an image pixelmill takes: ${message}.`;
    if (status === 401) return `The API key is missing or wrong: ${message}.`;
    if (status === 429) {
      let code = '';
      try {
        code = JSON.parse(text).error.code;
      } catch {
        // no code: a plain too-many
      }
      if (code === 'quota_exceeded') return `Your storage is full: ${message}.`;
      const seconds = retryAfterSeconds(retryAfter);
      const when = seconds
        ? ` Try again in ${seconds} s (after ${new Date(Date.now() + seconds * 1000).toLocaleTimeString()}).`
        : ' Try again in a while.';
      return `Too many uploads: ${message}.${when}`;
    }
    if (status >= 500) return `pixelmill could not take it right now: ${message}.`;
    return `Refused: ${message}.`;
  };

  /** Sends the card's file; resolves with the answer's status, text and Retry-After, status 0 when none came. */
  const send = (card) =>
    new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      card.xhr = xhr;
      xhr.open('POST', form.action);
      xhr.setRequestHeader('Accept', 'application/json');
      // The same key when the card is tried again: an upload whose answer was lost is not made twice.
      xhr.setRequestHeader('Idempotency-Key', card.idempotencyKey);
      for (const [name, value] of Object.entries(keyHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.round((event.loaded / event.total) * 100);
        card.progress.value = percent;
        card.progressLabel.textContent = `Upload of ${card.name}: ${percent}%`;
      };
      // All bytes sent: pixelmill checks them and answers.
      xhr.upload.onload = () => {
        card.progress.value = 100;
        card.progressLabel.textContent = `Upload of ${card.name}: sent, waiting for pixelmill's answer`;
      };
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText, retryAfter: xhr.getResponseHeader('Retry-After') });
      xhr.onerror = () => resolve({ status: 0 });
      xhr.onabort = () => resolve({ status: 0 });
      // The fields before the file, as the form without JavaScript sends them.
      const body = new FormData();
      body.append('op', card.op);
      if (card.op === resizeOp) {
        if (card.width) body.append('width', String(card.width));
        if (card.height) body.append('height', String(card.height));
      }
      body.append('image', card.file, card.file.name);
      xhr.send(body);
    });

  const upload = async (card) => {
    showError(card, '');
    setActions(card);
    setState(card, 'queued', 'Waiting for an earlier upload to end.');
    await uploads.acquire();
    let answer;
    try {
      if (card.removed) return;
      card.progress.value = 0;
      card.progressLabel.textContent = `Upload of ${card.name}`;
      card.progressRow.hidden = false;
      setState(card, 'uploading', '');
      answer = await send(card);
    } finally {
      uploads.release();
      card.xhr = undefined;
    }
    if (card.removed) return;
    card.progressRow.hidden = true;
    if (answer.status === 202) {
      const accepted = JSON.parse(answer.text);
      card.id = accepted.id;
      card.uploadedAt = new Date().toISOString();
      showMeta(card);
      setState(card, accepted.state);
      saveEntries();
      void follow(card);
      card.thumb = await makeThumb(card.original);
      if (card.thumb && !card.removed) saveEntries();
      return;
    }
    setState(card, 'refused', '');
    showError(
      card,
      answer.status === 0
        ? 'The upload was cut off: pixelmill could not be reached.'
        : uploadRefusal(answer.status, answer.text, answer.retryAfter),
    );
    // The same bytes would be refused again for their size or type; anything else may pass later.
    if (answer.status !== 413 && answer.status !== 415) {
      const retry = el('button', { type: 'button', 'aria-label': `Try uploading ${card.name} again` }, 'Try again');
      retry.addEventListener('click', () => {
        void upload(card);
        card.removeButton.focus();
      });
      setActions(card, retry);
    }
  };

  /** Positive whole numbers, else undefined. */
  const sizeOf = (input) => {
    const value = input && !input.disabled ? Number(input.value) : NaN;
    return Number.isInteger(value) && value > 0 ? value : undefined;
  };

  const addFiles = (files) => {
    const op = opSelect.value;
    const width = op === resizeOp ? sizeOf(widthInput) : undefined;
    const height = op === resizeOp ? sizeOf(heightInput) : undefined;
    for (const file of files) {
      const card = createCard({ name: file.name, size: file.size, type: file.type, op, width, height, file });
      addCard(card);
      const objectUrl = URL.createObjectURL(file);
      card.urls.push(objectUrl);
      // A file this browser cannot show (not an image, or a format it does not know) shows no original.
      showPicture(card.originalBox, card.original, objectUrl, () => card.originalFigure.classList.add('unviewable'));
      const refusal = refusalOf(file);
      if (refusal) {
        setState(card, 'refused', '');
        showError(card, refusal);
      } else void upload(card);
    }
  };

  // --- the form ---

  fileInput.multiple = true;
  const imageTitle = document.getElementById('image-title');
  imageTitle.textContent = imageTitle.dataset.many || 'Images';
  for (const node of form.querySelectorAll('.js-only')) node.hidden = false;

  const showSelection = () => {
    const files = [...fileInput.files];
    selection.hidden = files.length === 0;
    selection.textContent = files.length ? `Chosen: ${files.map((f) => f.name).join(', ')}` : '';
    button.textContent = files.length > 1 ? `Upload ${files.length} images` : 'Upload';
  };
  fileInput.addEventListener('change', showSelection);

  // The size fields are for resize only: hidden and disabled (neither sent nor checked) otherwise.
  const showSizeFields = () => {
    const resize = opSelect.value === resizeOp;
    resizeFields.hidden = !resize;
    resizeFields.disabled = !resize;
  };
  opSelect.addEventListener('change', showSizeFields);
  showSizeFields();

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const files = [...fileInput.files];
    if (files.length === 0) return;
    if (opSelect.value === resizeOp && !sizeOf(widthInput) && !sizeOf(heightInput)) {
      widthInput.setCustomValidity('Give a width, a height or both for resize.');
      widthInput.reportValidity();
      return;
    }
    addFiles(files);
    fileInput.value = '';
    showSelection();
    announce(files.length === 1 ? '1 image added to your list' : `${files.length} images added to your list`);
  });
  widthInput?.addEventListener('input', () => widthInput.setCustomValidity(''));
  heightInput?.addEventListener('input', () => widthInput.setCustomValidity(''));

  // Drop anywhere on the page: the files become the selection (a file dropped beside the zone
  // would otherwise replace the page), and the Upload button sends them.
  let dragDepth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    dropZone.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropZone.classList.remove('dragging');
  });
  document.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropZone.classList.remove('dragging');
    fileInput.files = event.dataTransfer.files;
    showSelection();
    button.focus();
  });
  // The zone opens the file chooser wherever it is clicked (the label and the input do it themselves).
  dropZone.addEventListener('click', (event) => {
    if (!event.target.closest('label, input')) fileInput.click();
  });

  clearButton.addEventListener('click', () => {
    for (const card of [...cards]) removeCard(card, false);
    announce('The list is cleared');
    fileInput.focus();
  });

  // The list kept from earlier visits, each card with its state asked anew.
  for (const entry of loadEntries().reverse()) {
    const card = createCard(entry);
    addCard(card);
    setState(card, 'checking', '');
    if (card.thumb) {
      const url = objectUrlOf(card.thumb);
      if (url) {
        card.urls.push(url);
        card.originalCaption.textContent = 'Original (thumbnail)';
        showPicture(card.originalBox, card.original, url);
      }
    }
    void follow(card);
  }
  saveEntries();

  // --- the status page (/?id=), shown by the server in #status ---

  let statusRun = 0;
  const showStatus = (...nodes) => status.replaceChildren(...nodes);
  const showStatusAlert = (text) => showStatus(el('p', { role: 'alert' }, text));
  let statusUrl = '';

  const statusResult = async (id, headers) => {
    if (!headers['X-API-Key']) return { src: resultUrl(id), download: '' };
    const response = await fetch(resultUrl(id), { headers });
    if (!response.ok) throw new Error(await readError(response));
    const blob = await response.blob();
    if (statusUrl) URL.revokeObjectURL(statusUrl);
    statusUrl = URL.createObjectURL(blob);
    return { src: statusUrl, download: `pixelmill-${id}.${extensionOf(blob.type)}` };
  };

  const showTask = async ({ id, state, error }, headers) => {
    const label = el('strong', { class: 'state', 'data-state': state }, state.replace('_', ' '));
    const nodes = [el('p', {}, 'Image ', el('code', {}, id), ': ', label)];
    if (state === 'finished') {
      const { src, download } = await statusResult(id, headers);
      nodes.push(
        el('p', {}, el('img', { src, alt: 'The processed image' })),
        el('p', {}, el('a', { href: src, download }, 'Download the result')),
      );
    } else if (state === 'failed') {
      nodes.push(el('p', { role: 'alert' }, `Why: ${error || 'no reason given'}`));
    } else {
      nodes.push(el('p', {}, 'The result appears here when it is ready.'));
    }
    showStatus(...nodes);
  };

  /** Long-polls the status page's image until it is final, the key changes, or the server refuses. */
  const followStatus = async (id, run, headers) => {
    let shown = '';
    let failures = 0;
    while (run === statusRun) {
      let wait = MIN_POLL_GAP_MS;
      try {
        const response = await fetch(`/image/isReady?id=${encodeURIComponent(id)}&waitMs=${LONG_POLL_MS}`, {
          headers: { Accept: 'application/json', ...headers },
        });
        if (run !== statusRun) return;
        if (response.ok) {
          failures = 0;
          const task = await response.json();
          // Re-render only on change, so screen readers announce each state once.
          if (task.state !== shown) {
            try {
              await showTask(task, headers);
            } catch (err) {
              if (run === statusRun) showStatusAlert(`Cannot show the result of image ${id}: ${err.message}`);
              return;
            }
            if (run !== statusRun) return;
          }
          shown = task.state;
          if (FINAL_STATES.includes(task.state)) return;
        } else if (response.status < 500) {
          showStatusAlert(`Cannot follow image ${id}: ${await readError(response)}`);
          return;
        } else {
          showStatusAlert(`pixelmill cannot be reached right now (${await readError(response)}); trying again.`);
          shown = '';
          failures += 1;
        }
      } catch {
        if (run !== statusRun) return;
        showStatusAlert('pixelmill cannot be reached right now; trying again.');
        shown = '';
        failures += 1;
      }
      if (failures) wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1));
      await sleep(wait);
    }
  };

  // A status page opened with ?id= of an image still in work: follow it here instead of reloading.
  if (status.dataset.poll === 'true' && status.dataset.id) void followStatus(status.dataset.id, statusRun, {});

  if (keyInput) {
    keyInput.addEventListener('change', () => {
      if (!keyInput.value) return;
      // The status page of an image when keys are on: it can be followed once the key is entered.
      if (status.dataset.needsKey === 'true' && status.dataset.id) void followStatus(status.dataset.id, ++statusRun, keyHeaders());
      // Cards that needed a key are followed again with this one.
      for (const card of cards) if (card.state === 'locked') void follow(card);
    });
    // A key the browser filled in.
    if (keyInput.value && status.dataset.needsKey === 'true' && status.dataset.id) {
      void followStatus(status.dataset.id, ++statusRun, keyHeaders());
    }
  }
})();
