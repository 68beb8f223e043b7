import { taskdbContract, type TaskEvents, type TaskStatus } from '@pixelmill/contracts';
import { AppError, backoffDelay, ContractClient, errorBodyMessage, sleep, type BackoffOptions, type Logger } from '@pixelmill/kit';

/** What master does with taskdb's news (the ImageService does it): wake the calls that wait. */
export interface TaskEventHandlers {
  /** A task was created, through any master. */
  taskCreated(): void;
  /** A task ended, through any master. */
  taskEnded(status: TaskStatus): void;
  /** News may have been lost (taskdb restarted, another instance answers, or it lost some itself). */
  tasksMissed(): void;
}

export interface TaskEventFeedOptions {
  /** Where taskdb is; asked again only after a poll failed, so the feed sticks to one instance while it answers. */
  resolve: () => Promise<string>;
  /** Called when taskdb could not be reached, e.g. to forget its address. */
  onUnreachable?: () => void;
  token?: string;
  handlers: TaskEventHandlers;
  logger: Logger;
  /** How long each poll waits in taskdb for news. */
  waitMs?: number;
  /** Pauses after failed polls. */
  backoff?: BackoffOptions;
  /**
   * Least time from an answer with news to the next poll: news arriving meanwhile waits in
   * taskdb (the cursor loses none) and comes in one answer, so a busy stack makes a few polls a
   * second instead of one per event. Only wakes through another master wait for it: this
   * master wakes its own calls at once. 50 ms by default.
   */
  gatherMs?: number;
}

const DEFAULT_GATHER_MS = 50;

/** Time on top of a long poll for taskdb to answer it. */
const LONG_POLL_MARGIN_MS = 10_000;

/**
 * Follows taskdb's task events (GET /events) in one loop of long polls, so that a task created or
 * ended through any master wakes the calls waiting on this one. A cursor is only good with the
 * instance that gave it, so the loop keeps to one taskdb instance while it answers; another one,
 * or a restarted one, answers `reset`, and every waiting call asks taskdb again. A poll that
 * fails is tried again after a backoff; meanwhile the waiting calls' periodic recheck is what
 * wakes them.
 */
export class TaskEventFeed {
  private readonly client: ContractClient;
  private readonly waitMs: number;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  /** The instance this feed keeps to, until a poll fails. */
  private target: Promise<string> | undefined;
  /** Where the next poll continues: the last answer's cursor. */
  private after: string | undefined;
  /** Polls failed in a row. */
  private failures = 0;

  constructor(private readonly options: TaskEventFeedOptions) {
    this.waitMs = options.waitMs ?? 20_000;
    this.client = new ContractClient({
      service: 'taskdb',
      baseUrl: () => (this.target ??= options.resolve()),
      token: options.token,
      timeoutMs: this.waitMs + LONG_POLL_MARGIN_MS,
      // The loop tries again itself, after a backoff, from an address resolved again.
      retries: 0,
      onUnreachable: () => options.onUnreachable?.(),
    });
  }

  /** Whether the feed hears what happens now: it has a place to continue from, and its last poll was answered. */
  get following(): boolean {
    return this.after !== undefined && this.failures === 0;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Ends the poll under way and the loop. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    while (!this.stopping.signal.aborted) {
      try {
        const answer = await this.poll(this.after);
        this.deliver(answer, this.after !== undefined);
        this.after = answer.cursor;
        if (this.failures > 0) logger.info("following taskdb's task events again");
        this.failures = 0;
        if (answer.events.length > 0) await sleep(this.options.gatherMs ?? DEFAULT_GATHER_MS, this.stopping.signal);
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        this.target = undefined;
        this.failures += 1;
        if (this.failures === 1) {
          logger.warn(`cannot follow taskdb's task events (${(err as Error).message}); waiting calls rely on their recheck meanwhile`);
        }
        await sleep(backoffDelay(this.failures, this.options.backoff ?? { initialMs: 100, maxMs: 5_000 }), this.stopping.signal);
      }
    }
  }

  private async poll(after: string | undefined): Promise<TaskEvents> {
    const result = await this.client.call(taskdbContract.events, {
      query: { after, waitMs: this.waitMs },
      signal: this.stopping.signal,
    });
    if (result.status !== 200) throw new AppError('unavailable', 503, `taskdb refused the events poll: ${errorBodyMessage(result)}`);
    return result.body;
  }

  private deliver(answer: TaskEvents, hadCursor: boolean): void {
    const { handlers } = this.options;
    // Without a cursor there was nothing to miss: the first answer only says where the news starts.
    if (answer.reset && hadCursor) handlers.tasksMissed();
    for (const event of answer.events) {
      if (event.kind === 'created') handlers.taskCreated();
      else handlers.taskEnded({ id: event.id, state: event.state, ...(event.error ? { error: event.error } : {}) });
    }
  }
}
