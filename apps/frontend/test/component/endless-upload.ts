import net from 'node:net';
import type { Server } from 'node:http';

/** What a client sending an endless body saw. */
export interface EndlessUploadAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Bytes of body the client got onto the wire before the answer came. */
  sent: number;
  /** Whether the server closed the connection after answering. */
  closed: boolean;
}

export interface EndlessUploadOptions {
  path?: string;
  headers: Record<string, string>;
  /** Sent first: a form's opening parts, an image's first bytes. */
  prefix?: Buffer;
  /** The client gives up after this many bytes (the test then fails on `sent`). */
  giveUpAfterBytes?: number;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x55);

/** One chunk of a `Transfer-Encoding: chunked` body. */
const framed = (data: Buffer): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);

/**
 * Sends a request whose body never ends, as fast as the connection takes it, until the server
 * answers (the answer is read to its Content-Length) or closes the connection.
 */
export function endlessUpload(
  url: string,
  { path = '/newImage', headers, prefix, giveUpAfterBytes = 256 * 1024 * 1024 }: EndlessUploadOptions,
): Promise<EndlessUploadAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let sent = 0;
    let received = Buffer.alloc(0);
    let answer: Omit<EndlessUploadAnswer, 'closed'> | undefined;
    let stopped = false;
    const chunked = Object.entries(headers).some(([name, value]) => name.toLowerCase() === 'transfer-encoding' && value === 'chunked');
    const chunk = chunked ? framed(CHUNK) : CHUNK;
    const finish = (closed: boolean): void => {
      if (stopped) return;
      stopped = true;
      socket.destroy();
      if (answer) resolve({ ...answer, closed });
      else reject(new Error(`no answer after ${sent} bytes sent`));
    };
    const pump = (): void => {
      while (!stopped && !answer && sent < giveUpAfterBytes) {
        sent += CHUNK.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (sent >= giveUpAfterBytes) finish(false);
    };
    socket.on('connect', () => {
      const head = Object.entries({ host: `${hostname}:${port}`, ...headers })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
      if (prefix) {
        socket.write(chunked ? framed(prefix) : prefix);
        sent += prefix.length;
      }
      pump();
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (answer || end < 0) return;
      const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const parsedHeaders = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      const length = Number(parsedHeaders['content-length'] ?? 0);
      if (received.length < end + 4 + length) return;
      answer = {
        status: Number(statusLine!.split(' ')[1]),
        headers: parsedHeaders,
        body: received.subarray(end + 4, end + 4 + length).toString('utf8'),
        sent,
      };
      // An answer on a connection left open: the server did not close it.
      setTimeout(() => finish(false), 5_000).unref();
    });
    // A reset after the answer is the server closing on a client still sending: the answer stands.
    socket.on('error', () => finish(answer !== undefined));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** Counts the bytes the server read off each connection, known once the connection closes. */
export function countBytesRead(server: Server): { total(): number; closed(): Promise<void> } {
  let total = 0;
  let open = 0;
  let waiters: Array<() => void> = [];
  server.on('connection', (socket: net.Socket) => {
    open += 1;
    socket.once('close', () => {
      total += socket.bytesRead;
      open -= 1;
      if (open === 0) {
        for (const wake of waiters) wake();
        waiters = [];
      }
    });
  });
  return {
    total: () => total,
    closed: () => (open === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
  };
}
