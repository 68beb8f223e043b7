import net from 'node:net';

/**
 * A TCP relay to a server that a test can cut off and put back, as if the server went down: for a
 * server shared with other test runs (PostgreSQL, Redis) that must not really stop.
 */
export interface TcpProxy {
  /** The loopback port it listens on, the same throughout. */
  readonly port: number;
  /** Connections open through it now. */
  readonly open: number;
  /** Resets every open connection, and each new one until restore(). */
  cut(): Promise<void>;
  /** Relays new connections again. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a relay on a free loopback port. While cut it keeps its port and resets what connects
 * (a closed port could be taken meanwhile by another program that picks a free one).
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const resetAll = () => {
    // A reset, as a server that went away leaves: no orderly end of the protocol.
    for (const { client, upstream } of pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return pairs.size;
    },
    async cut() {
      down = true;
      resetAll();
    },
    async restore() {
      down = false;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      resetAll();
      await closed;
    },
  };
}
