// A lean API client of the frontend, as a program using pixelmill would be: keep-alive HTTP,
// raw image bodies, and waiting for a result with the long poll where the frontend has one.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** Fallback for a frontend without `waitMs` on isReady: ask again after this pause. */
const POLL_INTERVAL_MS = 20;
/** What one long poll asks for; the frontend answers earlier when the image is done. */
const LONG_POLL_MS = 20_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One HTTP request. Resolves with status, headers and the body as a Buffer, or with only its
 * length (`discardBody`), so a large download is counted without being kept.
 */
function request(url, { method = 'GET', headers = {}, body, timeoutMs = 60_000, discardBody = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      const chunks = [];
      let length = 0;
      res.on('data', (chunk) => {
        length += chunk.length;
        if (!discardBody) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), length }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const describeAnswer = (answer) => `${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`;

class PixelmillClient {
  /** @param {string} frontendUrl */
  constructor(frontendUrl) {
    this.frontendUrl = frontendUrl;
    /** Whether isReady takes `waitMs`; set by detectLongPoll(). */
    this.longPoll = false;
  }

  /**
   * Whether the frontend's isReady understands `waitMs`: one that does refuses a malformed value
   * with 400, one that does not ignores the parameter and answers 404 for an unknown id.
   */
  async detectLongPoll() {
    const answer = await request(`${this.frontendUrl}/image/isReady?id=${crypto.randomUUID()}&waitMs=not-a-number`);
    this.longPoll = answer.status === 400 && /waitMs/i.test(answer.body.toString('utf8'));
    return this.longPoll;
  }

  /** Uploads a raw image body; resolves with the new image's id. */
  async upload(bytes, contentType = 'image/png') {
    const answer = await request(`${this.frontendUrl}/newImage`, {
      method: 'POST',
      headers: { 'content-type': contentType, accept: 'application/json' },
      body: bytes,
    });
    if (answer.status !== 202) throw new Error(`upload refused: ${describeAnswer(answer)}`);
    return JSON.parse(answer.body.toString('utf8')).id;
  }

  /** Resolves with the final status ({id, state, error?}) once the image is finished or failed. */
  async waitUntilDone(id, timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waitMs = Math.min(LONG_POLL_MS, Math.max(0, deadline - Date.now()));
      const url = `${this.frontendUrl}/image/isReady?id=${id}${this.longPoll ? `&waitMs=${waitMs}` : ''}`;
      const asked = Date.now();
      const answer = await request(url, { timeoutMs: waitMs + 30_000 });
      if (answer.status !== 200) throw new Error(`isReady ${id}: ${describeAnswer(answer)}`);
      const status = JSON.parse(answer.body.toString('utf8'));
      if (status.state === 'finished' || status.state === 'failed') return status;
      if (Date.now() > deadline) throw new Error(`${id} still ${status.state} after ${timeoutMs} ms`);
      // Without a long poll, or when one ends at once anyway, pause instead of asking in a tight loop.
      if (!this.longPoll || Date.now() - asked < POLL_INTERVAL_MS) await sleep(POLL_INTERVAL_MS);
    }
  }

  /** Downloads a finished image through the frontend; resolves with its length in bytes. */
  async downloadLength(id) {
    const answer = await request(`${this.frontendUrl}/image/get?id=${id}`, { discardBody: true });
    if (answer.status !== 200) throw new Error(`get ${id}: ${answer.status}`);
    return answer.length;
  }
}

/** Reads an object straight from storage with the internal token; resolves with its length. */
async function storageObjectLength(storageUrl, state, key, internalToken) {
  const answer = await request(`${storageUrl}/objects/${state}/${key}`, {
    headers: internalToken ? { authorization: `Bearer ${internalToken}` } : {},
    discardBody: true,
  });
  if (answer.status !== 200) throw new Error(`storage ${state}/${key}: ${answer.status}`);
  return answer.length;
}

/** Drops every connection of the client, requests in flight included (they fail). */
function closeConnections() {
  agent.destroy();
}

module.exports = { PixelmillClient, request, storageObjectLength, sleep, closeConnections };
