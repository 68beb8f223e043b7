// Enhances the upload page: uploads with fetch and follows the image's state without reloading.
// The page works without this script too: the form posts and the status page refreshes itself.
'use strict';

(() => {
  // Long poll: the server answers as soon as the image is done, else after this long (to show progress).
  const LONG_POLL_MS = 2000;
  const RETRY_MS = 2000;
  const FINAL_STATES = ['finished', 'failed'];

  const form = document.getElementById('upload-form');
  const status = document.getElementById('status');
  if (!form || !status || !window.fetch) return;
  const button = form.querySelector('button[type="submit"]');
  const fileInput = form.elements.namedItem('image');
  // Only there when the server needs API keys. The key goes as a header, never in a URL; the
  // result is then fetched with it too and shown from memory, since an <img> cannot send it.
  const keyInput = form.elements.namedItem('apiKey');
  const keyHeaders = () => (keyInput && keyInput.value ? { 'X-API-Key': keyInput.value } : {});
  const EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/bmp': 'bmp', 'image/gif': 'gif', 'image/tiff': 'tiff' };
  let objectUrl = '';
  // Each upload gets a number; following an image stops once a newer upload starts.
  let current = 0;

  const el = (tag, attributes, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  };
  const show = (...nodes) => status.replaceChildren(...nodes);
  const showAlert = (text) => show(el('p', { role: 'alert' }, text));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const resultUrl = (id) => `/image/get?id=${encodeURIComponent(id)}`;
  const megabytes = (bytes) => `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;

  /** The message of pixelmill's JSON error body, or the status when there is none. */
  const errorMessage = async (response) => {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch {
      // not JSON: fall through
    }
    return `the server answered ${response.status}`;
  };

  /** Where the result loads from: its URL, or with a key, the bytes fetched with the key. */
  const resultSource = async (id, headers) => {
    if (!headers['X-API-Key']) return { src: resultUrl(id), download: '' };
    const response = await fetch(resultUrl(id), { headers });
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(blob);
    return { src: objectUrl, download: `pixelmill-${id}.${EXTENSIONS[blob.type] || 'bin'}` };
  };

  const showTask = async ({ id, state, error }, headers) => {
    const label = el('strong', { class: 'state', 'data-state': state }, state.replace('_', ' '));
    const nodes = [el('p', {}, 'Image ', el('code', {}, id), ': ', label)];
    if (state === 'finished') {
      const { src, download } = await resultSource(id, headers);
      nodes.push(
        el('p', {}, el('img', { src, alt: 'The processed image' })),
        el('p', {}, el('a', { href: src, download }, 'Download the result')),
      );
    } else if (state === 'failed') {
      nodes.push(el('p', { role: 'alert' }, `Why: ${error || 'no reason given'}`));
    } else {
      nodes.push(el('p', {}, 'The result appears here when it is ready.'));
    }
    show(...nodes);
  };

  /** Long-polls the image's state until it is final, a newer upload starts, or the server refuses. */
  const follow = async (id, run, headers) => {
    let shown = '';
    while (run === current) {
      let wait = 0;
      try {
        const response = await fetch(`/image/isReady?id=${encodeURIComponent(id)}&waitMs=${LONG_POLL_MS}`, {
          headers: { Accept: 'application/json', ...headers },
        });
        if (run !== current) return;
        if (response.ok) {
          const task = await response.json();
          // Re-render only on change, so screen readers announce each state once.
          if (task.state !== shown) {
            try {
              await showTask(task, headers);
            } catch (err) {
              if (run === current) showAlert(`Cannot show the result of image ${id}: ${err.message}`);
              return;
            }
            if (run !== current) return;
          }
          shown = task.state;
          if (FINAL_STATES.includes(task.state)) return;
        } else if (response.status < 500) {
          showAlert(`Cannot follow image ${id}: ${await errorMessage(response)}`);
          return;
        } else {
          showAlert(`pixelmill cannot be reached right now (${await errorMessage(response)}); trying again.`);
          shown = '';
          wait = RETRY_MS;
        }
      } catch {
        if (run !== current) return;
        showAlert('pixelmill cannot be reached right now; trying again.');
        shown = '';
        wait = RETRY_MS;
      }
      await sleep(wait);
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const run = ++current;
    const file = fileInput.files[0];
    const maxBytes = Number(form.dataset.maxBytes);
    if (file && maxBytes && file.size > maxBytes) {
      showAlert(`The image is ${megabytes(file.size)}; the limit is ${megabytes(maxBytes)}.`);
      return;
    }
    button.disabled = true;
    show(el('p', {}, 'Uploading…'));
    delete status.dataset.needsKey;
    const headers = keyHeaders();
    const body = new FormData(form);
    body.delete('apiKey'); // sent as a header instead
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        body,
        headers: { Accept: 'application/json', ...headers },
      });
      if (!response.ok) {
        const verdict = response.status < 500 ? 'refused' : 'failed';
        showAlert(`Upload ${verdict}: ${await errorMessage(response)}`);
        return;
      }
      const accepted = await response.json();
      // A reload now shows this image's state, as the page does without JavaScript.
      history.replaceState(null, '', `/?id=${encodeURIComponent(accepted.id)}`);
      await showTask(accepted, headers);
      void follow(accepted.id, run, headers);
    } catch {
      showAlert('Upload failed: pixelmill could not be reached.');
    } finally {
      button.disabled = false;
    }
  });

  // A status page opened with ?id= of an image still in work: follow it here instead of reloading.
  if (status.dataset.poll === 'true' && status.dataset.id) void follow(status.dataset.id, current, {});

  // The status page of an image when keys are on: it can be followed once the key is entered.
  if (status.dataset.needsKey === 'true' && status.dataset.id && keyInput) {
    const followWithKey = () => {
      if (keyInput.value && status.dataset.needsKey === 'true') void follow(status.dataset.id, ++current, keyHeaders());
    };
    keyInput.addEventListener('change', followWithKey);
    followWithKey(); // a key the browser filled in
  }
})();
