// taskdb's record of every lease it granted (table task_leases), read from PostgreSQL, and the
// checks a run must pass: no task held by two unexpired leases at once, none finished twice.
import { Client } from 'pg';

export interface Lease {
  taskId: string;
  attempt: number;
  leaseToken: string;
  /** ms since the epoch. */
  grantedAt: number;
  /** Moved on each extension. */
  expiresAt: number;
  /** null while held. */
  endedAt: number | null;
  outcome: string | null;
}

/** Every lease of the schema's task_leases table, by task. */
export async function readLeases(url: string, schema: string): Promise<Map<string, Lease[]>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, string | number | null>>(
      `SELECT task_id, attempt, lease_token, granted_at, expires_at, ended_at, outcome FROM ${schema}.task_leases`,
    );
    const leasesOf = new Map<string, Lease[]>();
    for (const row of rows) {
      // BIGINT columns arrive as strings.
      const lease: Lease = {
        taskId: String(row.task_id),
        attempt: Number(row.attempt),
        leaseToken: String(row.lease_token),
        grantedAt: Number(row.granted_at),
        expiresAt: Number(row.expires_at),
        endedAt: row.ended_at === null ? null : Number(row.ended_at),
        outcome: row.outcome === null ? null : String(row.outcome),
      };
      leasesOf.set(lease.taskId, [...(leasesOf.get(lease.taskId) ?? []), lease]);
    }
    return leasesOf;
  } finally {
    await client.end();
  }
}

/**
 * What is wrong with one task's leases: ordered by grant, each must be granted no earlier than the
 * one before ended (ended, or expired, whichever came first); exactly one may end `finished`; no
 * lease token may be given twice.
 */
export function leaseProblems(taskId: string, leases: readonly Lease[]): string[] {
  const problems: string[] = [];
  const ordered = [...leases].sort((a, b) => a.grantedAt - b.grantedAt || a.attempt - b.attempt);
  for (let i = 1; i < ordered.length; i += 1) {
    const before = ordered[i - 1]!;
    const lease = ordered[i]!;
    const end = Math.min(before.expiresAt, before.endedAt ?? Infinity);
    if (lease.grantedAt < end) {
      problems.push(
        `${taskId}: attempt ${lease.attempt} was granted ${end - lease.grantedAt} ms before attempt ${before.attempt}'s lease ended`,
      );
    }
  }
  const finished = leases.filter((lease) => lease.outcome === 'finished').length;
  if (finished !== 1) problems.push(`${taskId}: ${finished} leases ended finished`);
  if (new Set(leases.map((lease) => lease.leaseToken)).size !== leases.length) problems.push(`${taskId}: a lease token was given twice`);
  return problems;
}

/**
 * Waits until at least `count` leases are held (granted, not ended, not expired), or the timeout
 * passes; how many were held at the end.
 */
export async function waitUntilLeasesHeld(database: { url: string; schema: string }, count: number, timeoutMs: number): Promise<number> {
  const client = new Client({ connectionString: database.url });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ held: string }>(
        `SELECT count(*) AS held FROM ${database.schema}.task_leases WHERE ended_at IS NULL AND expires_at > $1`,
        [Date.now()],
      );
      const held = Number(rows[0]!.held);
      if (held >= count || Date.now() > deadline) return held;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await client.end();
  }
}
