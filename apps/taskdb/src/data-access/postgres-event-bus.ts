import { Client } from 'pg';
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
  private readonly sending = new Set<Promise<unknown>>();

  constructor(private readonly options: PostgresEventBusOptions) {
    this.channel = taskEventsChannel(options.schema);
  }

  /** Listens; rejects when the first connection fails (the database is needed to start anyway). */
  async start(): Promise<void> {
    await this.listen();
  }

  /** Sends the event to every instance (this one too); a failure is logged, masters' rechecks make up for it. */
  publish(event: TaskEvent): void {
    const json = JSON.stringify(event);
    const payload = Buffer.byteLength(json) > MAX_PAYLOAD_BYTES ? LOST_PAYLOAD : json;
    const sent = this.options.pool
      .query('SELECT pg_notify($1, $2)', [this.channel, payload])
      .catch((err: unknown) => this.options.logger.warn(`could not send a task event: ${(err as Error).message}`))
      .finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }

  /** Stops listening, after the notifications under way were sent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all([...this.sending]);
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
    let event: ReturnType<typeof TaskEventSchema.safeParse> | undefined;
    try {
      event = TaskEventSchema.safeParse(JSON.parse(payload ?? ''));
    } catch {
      event = undefined;
    }
    if (event?.success) this.options.hub.publish(event.data);
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
