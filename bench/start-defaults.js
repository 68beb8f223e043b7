// `npm start` as a new user meets it (issue 11): the stack with the settings npm start plans when
// nothing is set (no .env, no environment), and one client sending a batch of uploads as fast as
// it can, a few at a time, without waiting for the results. Counts what the frontend accepts (202)
// and what its upload rate limit refuses (429, and the Retry-After each carries).
'use strict';
const http = require('node:http');
const path = require('node:path');

/** The options scripts/start.js gives startStack when no setting is made (see its main()). */
function startDefaultsOptions({ dataDir, logDir }) {
  const { loadSchemas, readSettings, planSettings } = require('../scripts/settings');
  const schemas = loadSchemas();
  // No .env (a file that is not there) and no environment: the services' own defaults.
  const settings = readSettings({ envFile: path.join(dataDir, 'no-such.env'), env: {}, schemas });
  const plan = planSettings(settings, schemas);
  if (plan.problems.length > 0) throw new Error(`npm start's default settings are refused: ${plan.problems.join('; ')}`);
  return { dataDir, logDir, freePorts: true, ports: plan.ports, tokens: plan.tokens, envFor: plan.envFor };
}

/** One upload; resolves with the status and the Retry-After header (seconds) when there is one. */
function upload(agent, url, bytes) {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'image/png', accept: 'application/json', 'content-length': bytes.length };
    const req = http.request(`${url}/newImage`, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode, retryAfter: retryAfter === undefined ? undefined : Number(retryAfter) });
      });
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('upload: no answer within 60 s')));
    req.on('error', reject);
    req.end(bytes);
  });
}

/**
 * `uploads` uploads of `images` (in turn) to the frontend at `url`, `concurrency` at a time, each
 * sent as soon as one before it is answered.
 * @returns {Promise<{uploads: number, accepted: number, refused: number, refusedWithoutRetryAfter: number,
 *   retryAfterSeconds: number[], otherStatuses: Record<string, number>, seconds: number}>}
 */
async function uploadBurst(url, images, { uploads, concurrency }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const counts = { uploads, accepted: 0, refused: 0, refusedWithoutRetryAfter: 0, retryAfterSeconds: [], otherStatuses: {} };
  let next = 0;
  const started = process.hrtime.bigint();
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, uploads) }, async () => {
        for (let i = next++; i < uploads; i = next++) {
          const answer = await upload(agent, url, images[i % images.length]);
          if (answer.status === 202) counts.accepted += 1;
          else if (answer.status === 429) {
            counts.refused += 1;
            if (answer.retryAfter === undefined || !Number.isFinite(answer.retryAfter)) counts.refusedWithoutRetryAfter += 1;
            else counts.retryAfterSeconds.push(answer.retryAfter);
          } else counts.otherStatuses[answer.status] = (counts.otherStatuses[answer.status] ?? 0) + 1;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { ...counts, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

module.exports = { startDefaultsOptions, uploadBurst };
