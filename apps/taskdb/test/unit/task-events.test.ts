import { randomUUID } from 'node:crypto';
import { MAX_TASK_EVENTS, type TaskEvent } from '@pixelmill/contracts';
import { payloadsOf } from '../../src/data-access/postgres-event-bus';
import { TaskEventHub } from '../../src/domain/task-events';

const created = (): TaskEvent => ({ kind: 'created', id: randomUUID() });
const ended = (): TaskEvent => ({ kind: 'ended', id: randomUUID(), state: 'failed', error: 'could not decode' });

/** The hub's current cursor, as a first poll gets it. */
const cursorOf = async (hub: TaskEventHub): Promise<string> => (await hub.wait(undefined, 0)).cursor;

describe('TaskEventHub', () => {
  it('when a poll has no cursor, then it is answered at once with the current cursor and no events', async () => {
    const hub = new TaskEventHub();
    hub.publish(created());

    const answer = await hub.wait(undefined, 30_000);

    expect(answer).toEqual({ cursor: expect.stringMatching(/^[0-9a-f]+:1$/), events: [], reset: false });
  });

  it('when events came after the cursor, then they are answered at once, in order, and the next cursor follows them', async () => {
    const hub = new TaskEventHub();
    const cursor = await cursorOf(hub);
    const events = [created(), ended(), created()];
    for (const event of events) hub.publish(event);

    const answer = await hub.wait(cursor, 30_000);

    expect(answer).toMatchObject({ events, reset: false });
    expect(await hub.wait(answer.cursor, 0)).toEqual({ cursor: answer.cursor, events: [], reset: false });
  });

  it('when a poll waits and an event comes, then the poll is answered with it', async () => {
    const hub = new TaskEventHub();
    const waiting = hub.wait(await cursorOf(hub), 30_000);
    expect(hub.waiting).toBe(1);
    const event = ended();

    hub.publish(event);

    expect(await waiting).toMatchObject({ events: [event], reset: false });
    expect(hub.waiting).toBe(0);
  });

  it('when nothing comes within the wait, then the poll is answered with no events and the same cursor', async () => {
    const hub = new TaskEventHub();
    const cursor = await cursorOf(hub);

    expect(await hub.wait(cursor, 50)).toEqual({ cursor, events: [], reset: false });
    expect(hub.waiting).toBe(0);
  });

  it('when the caller goes away, then its wait ends at once with no events', async () => {
    const hub = new TaskEventHub();
    const cursor = await cursorOf(hub);
    const hangUp = new AbortController();
    const waiting = hub.wait(cursor, 30_000, hangUp.signal);

    hangUp.abort();

    expect(await waiting).toEqual({ cursor, events: [], reset: false });
    expect(hub.waiting).toBe(0);
  });

  it.each([
    ["another instance's cursor", (hub: TaskEventHub) => `other${hub.instance}:1`],
    ['a cursor ahead of this instance', (hub: TaskEventHub) => `${hub.instance}:99`],
    ['a cursor that is not one', () => 'not-a-cursor'],
    ['a cursor with a bad sequence', (hub: TaskEventHub) => `${hub.instance}:x1`],
  ])('when a poll comes with %s, then it is answered reset at once, with the current cursor', async (_name, cursorFor) => {
    const hub = new TaskEventHub();
    hub.publish(created());

    const answer = await hub.wait(cursorFor(hub), 30_000);

    expect(answer).toEqual({ cursor: await cursorOf(hub), events: [], reset: true });
  });

  it('when a caller is further behind than the buffer, then it is answered reset; one just within it gets every event', async () => {
    const hub = new TaskEventHub({ capacity: 3 });
    const start = await cursorOf(hub);
    const events = [created(), created(), created()];
    for (const event of events) hub.publish(event);
    expect(await hub.wait(start, 0)).toMatchObject({ events, reset: false });

    hub.publish(created());

    expect(await hub.wait(start, 30_000)).toEqual({ cursor: await cursorOf(hub), events: [], reset: true });
  });

  it('when more than MAX_TASK_EVENTS are due, then an answer carries that many and the next one the rest', async () => {
    const hub = new TaskEventHub({ capacity: MAX_TASK_EVENTS * 2 });
    const start = await cursorOf(hub);
    for (let n = 0; n < MAX_TASK_EVENTS + 5; n += 1) hub.publish(created());

    const first = await hub.wait(start, 0);
    const second = await hub.wait(first.cursor, 0);

    expect([first.events.length, second.events.length]).toEqual([MAX_TASK_EVENTS, 5]);
    expect(second.cursor).toBe(await cursorOf(hub));
  });

  it('when a gap is marked, then a waiting poll and a later one from before it are answered reset, and polls after it go on', async () => {
    const hub = new TaskEventHub();
    const before = await cursorOf(hub);
    const waiting = hub.wait(before, 30_000);

    hub.gap();

    const answer = await waiting;
    expect(answer).toEqual({ cursor: await cursorOf(hub), events: [], reset: true });
    expect((await hub.wait(before, 0)).reset).toBe(true);
    const event = created();
    hub.publish(event);
    expect(await hub.wait(answer.cursor, 0)).toMatchObject({ events: [event], reset: false });
  });

  it('when the hub closes, then a waiting poll is answered at once, and later polls do not wait', async () => {
    const hub = new TaskEventHub();
    const cursor = await cursorOf(hub);
    const waiting = hub.wait(cursor, 30_000);

    hub.close();

    expect(await waiting).toEqual({ cursor, events: [], reset: false });
    expect(await hub.wait(cursor, 30_000)).toEqual({ cursor, events: [], reset: false });
    expect(hub.waiting).toBe(0);
  });
});

describe('payloadsOf', () => {
  const endedWith = (error: string): TaskEvent => ({ kind: 'ended', id: randomUUID(), state: 'failed', error });

  it('when events fit, then they go in one JSON array in their order', () => {
    const events = [endedWith('a'), endedWith('b'), endedWith('c')];
    const payloads = payloadsOf(events);
    expect(payloads).toHaveLength(1);
    expect(JSON.parse(payloads[0]!)).toEqual(events);
  });

  it('when a batch is larger than one notification takes, then it is split, each payload under 8000 bytes, nothing lost', () => {
    const events = Array.from({ length: 500 }, (_, n) => endedWith(`reason ${n}`.padEnd(200, '.')));
    const payloads = payloadsOf(events);
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8000);
    expect(payloads.flatMap((payload) => JSON.parse(payload) as TaskEvent[])).toEqual(events);
  });

  it('when one event alone is too large, then it is sent as the lost marker and the others around it as usual', () => {
    const events = [endedWith('before'), endedWith('\u0001'.repeat(2000)), endedWith('after')];
    const payloads = payloadsOf(events);
    expect(payloads).toEqual([JSON.stringify([events[0]]), 'lost', JSON.stringify([events[2]])]);
  });
});
