import { Client } from 'pg';
import { z } from 'zod';
import { TaskEventSchema, type TaskEvent } from '@pixelmill/contracts';
import { backoffDelay, sleep, type BackoffOptions, type Logger } from '@pixelmill/kit';
import type { Pool } from '@pixelmill/kit/postgres';
import type { TaskEventHub, TaskEventPublisher } from '../domain/task-events';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;
/** Sent instead of an event too large to send: every listener marks a gap, so its pollers recheck. */
const LOST_PAYLOAD = 'lost';
/** PostgreSQL names are at most 63 bytes; LISTEN would cut a longer one where pg_notify refuses it. */
const MAX_NAME_BYTES = 63;

/** One notification's payload: the events of a batch, in order. */
const TaskEventBatchSchema = z.array(TaskEventSchema).min(1);

/**
 * The payloads that carry a batch: JSON arrays of its events in order, each under PostgreSQL's
 * limit; an event too large on its own is sent as LOST_PAYLOAD.
 */
export function payloadsOf(events: readonly TaskEvent[]): string[] {
  const payloads: string[] = [];
  let current: string[] = [];
  let bytes = 2;
  const close = (): void => {
    if (current.length > 0) payloads.push(`[${current.join(',')}]`);
    current = [];
    bytes = 2;
  };
  for (const event of events) {
    const json = JSON.stringify(event);
    const size = Buffer.byteLength(json);
    if (size + 2 > MAX_PAYLOAD_BYTES) {
      close();
      payloads.push(LOST_PAYLOAD);
      continue;
    }
    if (bytes + size + 1 > MAX_PAYLOAD_BYTES) close();
    current.push(json);
    bytes += size + 1;
  }
  close();
  return payloads;
}

/** The channel of a schema's task events: the taskdb instances on one schema hear each other, no one else. */
export const taskEventsChannel = (schema: string): string => `${schema}_task_events`.slice(0, MAX_NAME_BYTES);

export interface PostgresEventBusOptions {
  url: string;
  schema: string;
  /** Sends the notifications. */
  pool: Pool;
  /** Fed with every instance's events, this one's included. */
  hub: TaskEventHub;
  logger: Logger;
  /** Pauses between attempts to listen again after the connection dropped. */
  reconnect?: BackoffOptions;
  connectTimeoutMs?: number;
}

/**
 * Task events across the taskdb instances on one PostgreSQL schema: each event is sent with
 * `pg_notify` once its change committed, and every instance LISTENs on a connection of its own
 * and feeds its hub. When that connection drops, the instance listens again (with backoff) and
 * marks a gap in its hub, so its pollers are answered `reset` once: events sent meanwhile were
 * not heard.
 */
export class PostgresEventBus implements TaskEventPublisher {
  private readonly channel: string;
  private client: Client | undefined;
  private stopped = false;
  private readonly stopping = new AbortController();
  private reconnecting: Promise<void> | undefined;
  private pending: TaskEvent[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly options: PostgresEventBusOptions) {
    this.channel = taskEventsChannel(options.schema);
  }

  /** Listens; rejects when the first connection fails (the database is needed to start anyway). */
  async start(): Promise<void> {
    await this.listen();
  }

  /**
   * Sends the event to every instance (this one too). Events are sent in batches, one statement at
   * a time: those published while a batch is on its way go together in the next, so a busy
   * instance sends few notifications, each carrying many events. A failure is logged; masters'
   * rechecks make up for it.
   */
  publish(event: TaskEvent): void {
    this.pending.push(event);
    if (this.flushing === undefined) this.flushing = this.flushSoon();
  }

  private async flushSoon(): Promise<void> {
    // The other events of this turn of the event loop join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      try {
        await this.options.pool.query('SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload', [
          this.channel,
          payloadsOf(batch),
        ]);
      } catch (err) {
        this.options.logger.warn(`could not send ${batch.length} task event(s): ${(err as Error).message}`);
      }
    }
    this.flushing = undefined;
  }

  /** Stops listening, after the notifications under way were sent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.flushing;
    await this.reconnecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Connects and listens; the connection becomes the current one. */
  private async listen(): Promise<void> {
    const client = new Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5_000,
      keepAlive: true,
    });
    // The error of a connection that broke is followed by its end, which is what is acted on.
    client.on('error', (err) => this.options.logger.warn(`the task event listener's connection failed: ${err.message}`));
    client.on('notification', ({ channel, payload }) => {
      if (channel === this.channel) this.receive(payload);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    // Before anything else runs: an end from now on is this connection's loss.
    this.client = client;
  }

  private receive(payload: string | undefined): void {
    let parsed: ReturnType<typeof TaskEventBatchSchema.safeParse> | undefined;
    try {
      parsed = TaskEventBatchSchema.safeParse(JSON.parse(payload ?? ''));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) for (const event of parsed.data) this.options.hub.publish(event);
    else this.options.hub.gap();
  }

  private lost(client: Client): void {
    if (this.stopped || client !== this.client) return;
    this.client = undefined;
    this.options.logger.warn('the task event listener lost its connection to PostgreSQL; listening again');
    this.reconnecting = this.reconnect().finally(() => (this.reconnecting = undefined));
  }

  private async reconnect(): Promise<void> {
    const backoff = this.options.reconnect ?? { initialMs: 100, maxMs: 5_000 };
    for (let failures = 1; !this.stopped; failures += 1) {
      await sleep(backoffDelay(failures, backoff), this.stopping.signal);
      if (this.stopped) return;
      try {
        await this.listen();
        // stop() closes the connection once this turn ends.
        if (this.stopped) return;
        // Whatever was sent while no one listened here is lost: pollers recheck once.
        this.options.hub.gap();
        this.options.logger.info('the task event listener listens again');
        return;
      } catch (err) {
        if (failures === 1) this.options.logger.warn(`the task event listener cannot connect yet: ${(err as Error).message}`);
      }
    }
  }
}
