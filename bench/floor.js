// The floor of the pipeline's plumbing (issue 11): bare `node:http` servers, one process per
// service, that do exactly the I/O each service does for one image and nothing else (no express,
// no zod, no axios, no logs, no signatures, no checks): the bytes in and out, storage's file
// writes and reads with their fsyncs, taskdb's SQLite commits, the small JSON calls. Measured like
// the services (CPU per image of each process, /proc/<pid>/stat), beside them, in the same run.
// The same servers also run on express and axios (`framework`: express routes and res.json(), axios
// calls; still nothing of pixelmill's): what the design card's HTTP packages cost by themselves.
//
// THE HOPS of one image, as the pipeline makes them (keep this list in step with the services;
// each hop below names the real call it stands for):
//
//   client → frontend   POST /newImage, the image (≈350 KB) ......... frontend's upload route
//     frontend → master   POST /newImage, the same bytes ............... master's newImage
//       master → storage    PUT /objects/inProgress/<id> ............... ImageStoreGateway.putSource
//                             storage: open tmp (wx), write, fsync, close, link into place, fsync
//                             the folder, unlink tmp ............................ FileStore.putStream
//       master → taskdb     POST /tasks (small JSON), one commit: insert ... TaskGateway.create
//   worker → master     POST /getWork ...................................... master's getWork
//     master → taskdb     POST /claim, one commit: update in a transaction .. TaskGateway.claim
//   worker → storage    GET /objects/inProgress/<id> (signed URL) ......... the worker's source read
//                         storage: open, read the head, fstat, stream back, close .. FileStore.open
//   worker → storage    POST /objects/finished/<id>_<attempt> (signed URL), the result (≈400 KB)
//                         storage: as the PUT above .................... the worker's result upload
//   worker → master     POST /workFinished (small JSON) ..................... master's workFinished
//                         (no read of the task: master checks the claim it handed out, LeasesHandedOut)
//     master → taskdb     POST /tasks/<id>/finish, one commit: update ........ TaskGateway.changeState
//                         (no HEAD of the result in storage: the worker's receipt replaced it)
//   client → frontend   GET /isReady?id= ....................................... frontend's isReady
//     frontend → master   GET /isReady?id= ....................................... master's isReady
//                           (no taskdb read: the end it recorded answers, as it wakes a waiting
//                           isReady with the ended state) ........................ ImageService.status
//   taskdb → master     GET /events (long poll), the task's `created` and `ended` news, several per
//                       answer when they come together ............................. TaskEventFeed
//   master → storage    POST /deletions per batch of up to 100 ended tasks (an unlink each), and per
//                       batch one read and one commit in taskdb ............. the Housekeeper's sweep
//   kv: nothing per image (discovery is cached): its floor is 0.
//   Not in the pipeline run: the result's download (GET /image/get).
//
//   node bench/floor.js <frontend|master|storage|taskdb> '<config JSON>'   one floor server (a child process)
'use strict';
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const http = require('node:http');
const path = require('node:path');
const { fork } = require('node:child_process');
const { randomUUID } = require('node:crypto');

const ROOT = path.resolve(__dirname, '..');
/** The floor's servers, in start stages (each stage calls the ones before it). kv has none: nothing per image. */
const FLOOR_STAGES = [['taskdb', 'storage'], ['master'], ['frontend']];
const FLOOR_SERVICES = FLOOR_STAGES.flat();
/** Storage reads an object's first bytes to tell its type (kit's IMAGE_TYPE_BYTES). */
const IMAGE_HEAD_BYTES = 16;
/** Storage's read chunk (FileStore's READ_CHUNK_BYTES). */
const READ_CHUNK_BYTES = 256 * 1024;
/** How long taskdb holds a poll of /events without news. */
const EVENTS_WAIT_MS = 20_000;
/** The Housekeeper's batch, and storage's unlinks in flight for one deletion request (FileStore.deleteMany). */
const SWEEP_BATCH = 100;
const UNLINKS_IN_FLIGHT = 16;

// ---- HTTP, bare: keep-alive clients, whole small bodies, streamed large ones ----

const newAgent = () => new http.Agent({ keepAlive: true, maxSockets: 64 });

/** Reads a whole body (small JSON, or an image storage writes in one go as FileStore joins chunks). */
function readBody(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/**
 * One request: `body` a Buffer or a string, or `stream` piped on with its `length`. Resolves with
 * the status and the body (counted, not kept, with `discard`).
 */
function send(agent, url, { method = 'GET', body, stream, length, contentType, discard = false } = {}) {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? Buffer.from(body) : body;
    const headers = {};
    if (payload !== undefined || stream !== undefined) {
      headers['content-length'] = String(payload?.length ?? length);
      headers['content-type'] = contentType ?? (typeof body === 'string' ? 'application/json' : 'application/octet-stream');
    }
    const req = http.request(url, { method, agent, headers }, (res) => {
      if (discard) {
        let bytes = 0;
        res.on('data', (chunk) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode, bytes }));
        res.on('error', reject);
        return;
      }
      readBody(res).then((data) => resolve({ status: res.statusCode, body: data }), reject);
    });
    req.on('error', reject);
    if (stream) stream.pipe(req);
    else req.end(payload);
  });
}

const sendJson = (agent, url, method, value) => send(agent, url, { method, body: value === undefined ? undefined : JSON.stringify(value) });
const parsed = (answer) => JSON.parse(answer.body.toString('utf8'));

function answer(res, status, value) {
  if (value === undefined) {
    res.writeHead(status, { 'content-length': '0' });
    res.end();
    return;
  }
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A request's JSON body: as express.json() parsed it (the floor on express), else read here. */
async function jsonOf(req) {
  if (req.body !== undefined) return req.body;
  const text = (await readBody(req)).toString('utf8');
  return text === '' ? {} : JSON.parse(text);
}

/** The floor's HTTP on bare node:http: its servers' calls and answers. */
const BARE_IO = { agent: newAgent, send, sendJson, answer };

/**
 * The same HTTP through the design card's packages, used as a plain program would: axios for the
 * calls (a keep-alive agent, every status an answer, bodies as bytes; no redirects followed and no
 * proxy, as kit's transport) and express for the answers (JSON bodies parsed by express.json() and
 * answered by res.json(); no ETag and no X-Powered-By, as the services). Nothing of pixelmill's:
 * no contracts, checks, auth, logs or request ids.
 */
function frameworkIo() {
  const axios = require('axios');
  const clients = new WeakMap();
  const clientOf = (agent) => {
    let client = clients.get(agent);
    if (client === undefined) {
      client = axios.create({
        httpAgent: agent,
        validateStatus: () => true,
        transformRequest: [],
        transformResponse: [],
        maxRedirects: 0,
        proxy: false,
        maxBodyLength: Infinity,
        maxContentLength: Infinity,
      });
      clients.set(agent, client);
    }
    return client;
  };
  const axiosSend = async (agent, url, { method = 'GET', body, stream, length, contentType, discard = false } = {}) => {
    const headers = {};
    if (body !== undefined || stream !== undefined) {
      headers['content-type'] = contentType ?? (typeof body === 'string' ? 'application/json' : 'application/octet-stream');
      if (stream) headers['content-length'] = String(length);
    }
    const response = await clientOf(agent).request({
      url,
      method,
      headers,
      data: stream ?? body,
      responseType: discard ? 'stream' : 'arraybuffer',
    });
    if (discard) {
      let bytes = 0;
      for await (const chunk of response.data) bytes += chunk.length;
      return { status: response.status, bytes };
    }
    return { status: response.status, body: Buffer.isBuffer(response.data) ? response.data : Buffer.from(response.data) };
  };
  return {
    agent: newAgent,
    send: axiosSend,
    sendJson: (agent, url, method, value) =>
      axiosSend(agent, url, { method, body: value === undefined ? undefined : JSON.stringify(value) }),
    answer: (res, status, value) => (value === undefined ? res.status(status).end() : res.status(status).json(value)),
  };
}

/** Fails loudly: the floor must do every hop, or its figure means nothing. */
function expectStatus(result, status, what) {
  if (result.status !== status) throw new Error(`${what}: ${result.status} ${result.body?.toString('utf8').slice(0, 200) ?? ''}`);
  return result;
}

// ---- The servers ----

/** taskdb: the tasks in SQLite as the real one opens it (WAL, its `synchronous`), one commit per transition. */
function taskdbServer({ dataDir, synchronous }, io) {
  const Database = require(require.resolve('better-sqlite3', { paths: [path.join(ROOT, 'apps', 'taskdb')] }));
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'tasks.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec(`CREATE TABLE IF NOT EXISTS tasks (
             seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, op TEXT NOT NULL, content_type TEXT NOT NULL,
             state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_expires_at INTEGER,
             source_bytes INTEGER NOT NULL, result_bytes INTEGER, source_deleted INTEGER NOT NULL DEFAULT 0,
             created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
           CREATE INDEX IF NOT EXISTS tasks_claimable ON tasks (seq) WHERE state = 'not_started';
           CREATE INDEX IF NOT EXISTS tasks_to_sweep ON tasks (seq) WHERE source_deleted = 0 AND state = 'finished';`);
  const sql = {
    insert: db.prepare(`INSERT INTO tasks (id, op, content_type, state, source_bytes, created_at, updated_at)
                        VALUES (@id, @op, @contentType, 'not_started', @sourceBytes, @now, @now) RETURNING *`),
    claim: db.prepare(`UPDATE tasks SET state = 'in_progress', attempt = attempt + 1, lease_token = @leaseToken,
                         lease_expires_at = @leaseExpiresAt, updated_at = @now
                       WHERE seq = (SELECT seq FROM tasks WHERE state = 'not_started' ORDER BY seq LIMIT 1) RETURNING *`),
    get: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    finish: db.prepare(`UPDATE tasks SET state = 'finished', lease_token = NULL, lease_expires_at = NULL, result_bytes = @resultBytes,
                          updated_at = @now WHERE id = @id AND state = 'in_progress' AND lease_token = @leaseToken RETURNING *`),
    toSweep: db.prepare(`SELECT id FROM tasks WHERE source_deleted = 0 AND state = 'finished' ORDER BY seq LIMIT ?`),
    swept: db.prepare('UPDATE tasks SET source_deleted = 1 WHERE id = ?'),
  };
  const create = db.transaction((task) => sql.insert.get({ ...task, now: Date.now() }));
  const claim = db.transaction((leaseMs) =>
    sql.claim.get({ leaseToken: randomUUID(), leaseExpiresAt: Date.now() + leaseMs, now: Date.now() }),
  );
  const finish = db.transaction((change) => sql.finish.get({ ...change, now: Date.now() }));
  const sweep = db.transaction((ids) => ids.forEach((id) => sql.swept.run(id)));

  // The news master follows: kept in memory, the last few, with a cursor.
  const events = [];
  let eventSeq = 0;
  const waiting = new Set();
  const publish = (kind, row) => {
    events.push({ seq: ++eventSeq, kind, id: row.id, state: row.state });
    if (events.length > 1000) events.splice(0, events.length - 1000);
    for (const wake of waiting) wake();
  };
  const eventsAfter = (after) => events.filter((event) => event.seq > after);

  return async (req, res, url) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'POST' && url.pathname === '/tasks') {
      const row = create.immediate(await jsonOf(req));
      publish('created', row);
      return io.answer(res, 201, row);
    }
    if (req.method === 'POST' && url.pathname === '/claim') {
      const row = claim.immediate((await jsonOf(req)).leaseMs);
      return row ? io.answer(res, 200, row) : io.answer(res, 204);
    }
    if (req.method === 'GET' && parts[0] === 'tasks' && parts.length === 2) {
      const row = sql.get.get(parts[1]);
      return row ? io.answer(res, 200, row) : io.answer(res, 404, { error: 'not found' });
    }
    if (req.method === 'POST' && parts[0] === 'tasks' && parts[2] === 'finish') {
      const body = await jsonOf(req);
      const row = finish.immediate({ id: parts[1], leaseToken: body.leaseToken, resultBytes: body.resultBytes });
      if (!row) return io.answer(res, 409, { error: 'not in progress under this lease' });
      publish('ended', row);
      return io.answer(res, 200, row);
    }
    if (req.method === 'GET' && url.pathname === '/housekeeping') {
      return io.answer(res, 200, { sources: sql.toSweep.all(Number(url.searchParams.get('limit'))).map((row) => row.id) });
    }
    if (req.method === 'POST' && url.pathname === '/housekeepingDone') {
      const { ids } = await jsonOf(req);
      sweep.immediate(ids);
      return io.answer(res, 200, { sourcesDeleted: ids.length });
    }
    if (req.method === 'GET' && url.pathname === '/events') {
      const after = Number(url.searchParams.get('after') ?? eventSeq);
      if (eventsAfter(after).length === 0) {
        // Held until news comes (answered on the next turn, so that news of one turn go together) or the wait ends.
        await new Promise((resolve) => {
          const wake = () => {
            waiting.delete(wake);
            clearTimeout(timer);
            setImmediate(resolve);
          };
          const timer = setTimeout(wake, EVENTS_WAIT_MS);
          waiting.add(wake);
          // The poller gave up (its socket closed): nothing to answer.
          res.once('close', wake);
        });
      }
      return io.answer(res, 200, { cursor: eventSeq, events: eventsAfter(after) });
    }
    return io.answer(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
}

/** storage: objects in a folder, written and read with the file-system calls FileStore makes. */
function storageServer({ dataDir }, io) {
  const folders = {};
  for (const folder of ['inProgress', 'finished', 'tmp']) fs.mkdirSync(path.join(dataDir, folder), { recursive: true });
  // FileStore keeps its state folders open: a link is made durable by one fsync.
  for (const state of ['inProgress', 'finished']) folders[state] = fs.openSync(path.join(dataDir, state), 'r');
  const fsyncFolder = (state) => new Promise((resolve, reject) => fs.fsync(folders[state], (err) => (err ? reject(err) : resolve())));

  return async (req, res, url) => {
    if (req.method === 'POST' && url.pathname === '/deletions') {
      // FileStore.deleteMany: an unlink each, a few at a time; those gone already count.
      const { objects } = await jsonOf(req);
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(UNLINKS_IN_FLIGHT, objects.length) }, async () => {
          for (let i = next++; i < objects.length; i = next++) {
            if (!(objects[i].state in folders)) throw new Error(`no state ${objects[i].state}`);
            await fsp.rm(path.join(dataDir, objects[i].state, objects[i].key), { force: true });
          }
        }),
      );
      return io.answer(res, 200, { deleted: objects.length });
    }
    const [objects, state, key] = url.pathname.split('/').filter(Boolean);
    if (objects !== 'objects' || !(state in folders) || !key) return io.answer(res, 404, { error: 'no such object path' });
    const target = path.join(dataDir, state, key);
    if (req.method === 'PUT' || req.method === 'POST') {
      // FileStore.putStream: the body joined into one write (its chunks are joined up to 1 MB),
      // a temp file opened exclusively, written, flushed (fsync) and closed, linked into place,
      // the folder flushed, the temp file removed.
      const bytes = await readBody(req);
      const temp = path.join(dataDir, 'tmp', `${key}.${randomUUID()}`);
      const file = await fsp.open(temp, 'wx');
      try {
        await file.write(bytes, 0, bytes.length, 0);
        await file.sync();
      } finally {
        await file.close();
      }
      await fsp.link(temp, target);
      await fsyncFolder(state);
      await fsp.rm(temp, { force: true });
      return io.answer(res, 201, { state, key, size: bytes.length });
    }
    if (req.method === 'GET') {
      // FileStore.open: one open, the head read (the type), fstat (the size), the bytes streamed in large chunks.
      let file;
      try {
        file = await fsp.open(target, 'r');
      } catch (err) {
        if (err.code === 'ENOENT') return io.answer(res, 404, { error: 'no such object' });
        throw err;
      }
      await file.read(Buffer.alloc(IMAGE_HEAD_BYTES), 0, IMAGE_HEAD_BYTES, 0);
      const { size } = await file.stat();
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': size });
      file.createReadStream({ highWaterMark: READ_CHUNK_BYTES }).pipe(res);
      return undefined;
    }
    if (req.method === 'DELETE') {
      // FileStore.delete: one unlink.
      try {
        await fsp.unlink(target);
        return io.answer(res, 204);
      } catch (err) {
        if (err.code === 'ENOENT') return io.answer(res, 404, { error: 'no such object' });
        throw err;
      }
    }
    return io.answer(res, 405, { error: 'method not allowed' });
  };
}

/** master: uploads on to storage, tasks through taskdb, taskdb's news followed by a long poll. */
function masterServer({ urls }, io) {
  const agent = io.agent();
  const { taskdb, storage } = urls;
  /** getWork calls waiting for a `created` event. */
  const waitingForWork = new Set();
  /** The ends this master recorded, until their isReady: the pipeline's waiting isReady is woken with them. */
  const ended = new Map();

  // TaskEventFeed: one loop of long polls on taskdb's /events.
  let cursor;
  (async () => {
    for (;;) {
      try {
        const news = parsed(
          expectStatus(
            await io.send(agent, `${taskdb}/events?waitMs=${EVENTS_WAIT_MS}${cursor === undefined ? '' : `&after=${cursor}`}`),
            200,
            'events',
          ),
        );
        cursor = news.cursor;
        if (news.events.some((event) => event.kind === 'created')) for (const wake of waitingForWork) wake();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();

  const claim = async () => {
    for (;;) {
      const claimed = await io.sendJson(agent, `${taskdb}/claim`, 'POST', { leaseMs: 60_000 });
      if (claimed.status === 200) return parsed(claimed);
      expectStatus(claimed, 204, 'claim');
      // As ImageService.nextWork: wait for news of a task (or a recheck), then claim again.
      await new Promise((resolve) => {
        const wake = () => {
          waitingForWork.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 1_000);
        waitingForWork.add(wake);
      });
    }
  };

  return async (req, res, url) => {
    if (req.method === 'POST' && url.pathname === '/newImage') {
      // The upload goes on to storage as it arrives, then the task is created.
      const id = randomUUID();
      const length = Number(req.headers['content-length']);
      expectStatus(
        await io.send(agent, `${storage}/objects/inProgress/${id}`, { method: 'PUT', stream: req, length, contentType: 'image/png' }),
        201,
        'putSource',
      );
      const task = parsed(
        expectStatus(
          await io.sendJson(agent, `${taskdb}/tasks`, 'POST', { id, op: 'swap-red-blue', contentType: 'image/png', sourceBytes: length }),
          201,
          'create',
        ),
      );
      return io.answer(res, 202, { id, state: task.state });
    }
    if (req.method === 'POST' && url.pathname === '/getWork') {
      await jsonOf(req);
      const task = await claim();
      return io.answer(res, 200, {
        id: task.id,
        op: task.op,
        contentType: task.content_type,
        attempt: task.attempt,
        leaseToken: task.lease_token,
        leaseExpiresAt: new Date(task.lease_expires_at).toISOString(),
        sourceUrl: `${storage}/objects/inProgress/${task.id}`,
        resultUrl: `${storage}/objects/finished/${task.id}_${task.attempt}`,
      });
    }
    if (req.method === 'POST' && url.pathname === '/workFinished') {
      const { id, leaseToken, resultBytes } = await jsonOf(req);
      const task = parsed(
        expectStatus(await io.sendJson(agent, `${taskdb}/tasks/${id}/finish`, 'POST', { leaseToken, resultBytes }), 200, 'finish'),
      );
      ended.set(id, task.state);
      return io.answer(res, 200, { id, state: task.state });
    }
    if (req.method === 'GET' && url.pathname === '/isReady') {
      const id = url.searchParams.get('id');
      const state = ended.get(id) ?? parsed(expectStatus(await io.send(agent, `${taskdb}/tasks/${id}`), 200, 'get')).state;
      ended.delete(id);
      return io.answer(res, 200, { id, state });
    }
    if (req.method === 'POST' && url.pathname === '/sweep') {
      // The Housekeeper: the sources of ended tasks deleted, a batch at a time.
      await jsonOf(req);
      let deleted = 0;
      for (;;) {
        const { sources } = parsed(expectStatus(await io.send(agent, `${taskdb}/housekeeping?limit=${SWEEP_BATCH}`), 200, 'housekeeping'));
        if (sources.length === 0) break;
        const objects = sources.map((id) => ({ state: 'inProgress', key: id }));
        expectStatus(await io.sendJson(agent, `${storage}/deletions`, 'POST', { objects }), 200, 'deleteObjects');
        expectStatus(await io.sendJson(agent, `${taskdb}/housekeepingDone`, 'POST', { ids: sources }), 200, 'housekeepingDone');
        deleted += sources.length;
      }
      return io.answer(res, 200, { deleted });
    }
    return io.answer(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
}

/** frontend: uploads passed on to master as they arrive, isReady asked of master. */
function frontendServer({ urls }, io) {
  const agent = io.agent();
  return async (req, res, url) => {
    if (req.method === 'POST' && url.pathname === '/newImage') {
      const length = Number(req.headers['content-length']);
      const accepted = expectStatus(
        await io.send(agent, `${urls.master}/newImage`, { method: 'POST', stream: req, length, contentType: req.headers['content-type'] }),
        202,
        'newImage',
      );
      return io.answer(res, 202, parsed(accepted));
    }
    if (req.method === 'GET' && url.pathname === '/isReady') {
      const status = expectStatus(await io.send(agent, `${urls.master}/isReady?id=${url.searchParams.get('id')}`), 200, 'isReady');
      return io.answer(res, 200, parsed(status));
    }
    return io.answer(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
}

const SERVERS = { taskdb: taskdbServer, storage: storageServer, master: masterServer, frontend: frontendServer };

/** Each floor server's routes, for the floor on express (the bare one dispatches in its handler). */
const ROUTES = {
  taskdb: [
    ['post', '/tasks'],
    ['post', '/claim'],
    ['get', '/tasks/:id'],
    ['post', '/tasks/:id/finish'],
    ['get', '/housekeeping'],
    ['post', '/housekeepingDone'],
    ['get', '/events'],
  ],
  storage: [
    ['post', '/deletions'],
    ['put', '/objects/:state/:key'],
    ['post', '/objects/:state/:key'],
    ['get', '/objects/:state/:key'],
    ['delete', '/objects/:state/:key'],
  ],
  master: [
    ['post', '/newImage'],
    ['post', '/getWork'],
    ['post', '/workFinished'],
    ['get', '/isReady'],
    ['post', '/sweep'],
  ],
  frontend: [
    ['post', '/newImage'],
    ['get', '/isReady'],
  ],
};

/**
 * The child process: one floor server on a free loopback port, which it tells its parent; on
 * bare node:http, or with `framework` on express and axios.
 */
function serve(service, config) {
  const io = config.framework ? frameworkIo() : BARE_IO;
  const handle = SERVERS[service](config, io);
  const run = (req, res) =>
    handle(req, res, new URL(req.url, 'http://floor')).catch((err) => {
      process.stderr.write(`floor ${service}: ${req.method} ${req.url}: ${err.stack ?? err}\n`);
      if (!res.headersSent) answer(res, 500, { error: String(err.message ?? err) });
      else res.destroy();
    });
  let listener = run;
  if (config.framework) {
    const express = require('express');
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.use(express.json({ limit: '1mb' }));
    for (const [method, route] of ROUTES[service]) app[method](route, run);
    listener = app;
  }
  const server = http.createServer({ keepAliveTimeout: 60_000 }, listener);
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

// ---- The parent's side: start the floor, drive it ----

/**
 * Starts the floor's servers as child processes, data under `dataDir`, output to `logDir`; with
 * `framework`, the floor on express and axios (frameworkIo).
 * @returns {Promise<{pids: Record<string, number>, urls: Record<string, string>, stop: () => Promise<void>}>}
 */
async function startFloor({ dataDir, logDir, sqliteSynchronous, framework = false }) {
  /** service → its child process */
  const children = {};
  const urls = {};
  const stop = () =>
    Promise.all(
      Object.values(children).map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    ).then(() => undefined);
  const start = async (service) => {
    const config = { dataDir: path.join(dataDir, service), synchronous: sqliteSynchronous, urls: { ...urls }, framework };
    const log = fs.openSync(path.join(logDir, `floor-${service}${framework ? '-express' : ''}.log`), 'a');
    const child = fork(__filename, [service, JSON.stringify(config)], { stdio: ['ignore', log, log, 'ipc'] });
    fs.closeSync(log);
    children[service] = child;
    const port = await new Promise((resolve, reject) => {
      child.once('message', (message) => resolve(message.port));
      child.once('exit', (code, signal) => reject(new Error(`the floor's ${service} exited (${signal ?? code}) before it listened`)));
    });
    child.removeAllListeners('exit');
    // Its IPC channel is not needed any more, and would keep this process alive.
    child.disconnect();
    urls[service] = `http://127.0.0.1:${port}`;
  };
  try {
    for (const stage of FLOOR_STAGES) await Promise.all(stage.map(start));
  } catch (err) {
    await stop();
    throw err;
  }
  return { pids: Object.fromEntries(FLOOR_SERVICES.map((service) => [service, children[service].pid])), urls, stop };
}

/**
 * One image through every hop of the floor (see the list at the top), as the client and the worker
 * make them. Without `transform`, no image work: the result uploaded is `result`, bytes of the real
 * result's size; with it, the worker transforms the source it read and uploads what it made.
 */
async function floorImage(urls, { client, worker }, source, result, transform) {
  const upload = parsed(
    expectStatus(
      await send(client, `${urls.frontend}/newImage`, { method: 'POST', body: source, contentType: 'image/png' }),
      202,
      'upload',
    ),
  );
  const work = parsed(expectStatus(await send(worker, `${urls.master}/getWork`, { method: 'POST', body: '{}' }), 200, 'getWork'));
  const read = expectStatus(await send(worker, work.sourceUrl, { discard: !transform }), 200, 'source read');
  const output = transform ? await transform(read.body) : result;
  expectStatus(await send(worker, work.resultUrl, { method: 'POST', body: output, contentType: 'image/png' }), 201, 'result upload');
  const finished = { id: work.id, leaseToken: work.leaseToken, resultBytes: output.length };
  expectStatus(await sendJson(worker, `${urls.master}/workFinished`, 'POST', finished), 200, 'workFinished');
  const status = parsed(expectStatus(await send(client, `${urls.frontend}/isReady?id=${upload.id}`), 200, 'isReady'));
  if (status.state !== 'finished' && status.state !== 'in_progress' && status.state !== 'not_started') {
    throw new Error(`floor image ${upload.id}: ${status.state}`);
  }
}

/** The housekeeper's sweep of the sources of the tasks ended so far. */
const sweep = async (urls, worker) =>
  expectStatus(await send(worker, `${urls.master}/sweep`, { method: 'POST', body: '{}' }), 200, 'sweep');

/**
 * Plays the client and the worker against the floor: `count` images, `concurrency` in flight, each
 * through every hop (with the worker's image work when `transform` is given), then the
 * housekeeper's sweep. Resolves with the wall time in seconds.
 */
async function driveFloor(urls, { sources, result, count, concurrency, transform }) {
  const agents = { client: newAgent(), worker: newAgent() };
  let next = 0;
  const started = process.hrtime.bigint();
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, async () => {
        for (let i = next++; i < count; i = next++) await floorImage(urls, agents, sources[i % sources.length], result, transform);
      }),
    );
    await sweep(urls, agents.worker);
  } finally {
    agents.client.destroy();
    agents.worker.destroy();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * The floor of the idle latency: `count` images one at a time, each after a pause of `pauseMs`
 * (so it meets idle servers, as the pipeline's idle latency does), each through every hop one
 * after another (with the worker's image work when `transform` is given). Resolves with each image's time from its upload to its `isReady` answer, in ms.
 * Two requests more than the pipeline's: the worker asks for work and the client for the state
 * once the image is there, where the pipeline's long polls are already waiting.
 */
async function floorIdleLatencies(urls, { sources, result, count, pauseMs, transform }) {
  const agents = { client: newAgent(), worker: newAgent() };
  const latencies = [];
  try {
    for (let i = 0; i < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      const started = process.hrtime.bigint();
      await floorImage(urls, agents, sources[i % sources.length], result, transform);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    await sweep(urls, agents.worker);
  } finally {
    agents.client.destroy();
    agents.worker.destroy();
  }
  return latencies;
}

if (require.main === module) serve(process.argv[2], JSON.parse(process.argv[3]));

module.exports = { FLOOR_SERVICES, startFloor, driveFloor, floorIdleLatencies };
