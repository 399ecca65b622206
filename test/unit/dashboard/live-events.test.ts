/**
 * The dashboard's event delivery (src/dashboard/live-events.ts, behind LiveSocket): server frames are handed to the
 * panels once per animation frame, in the order received, so a burst of frames costs one render of
 * each panel rather than one per frame; a listener that throws does not cost the others their events.
 */
import { expect } from 'chai';
import { Batcher, callEach, LiveEvents, nextFrame, type LiveEvent } from '../../../src/dashboard/live-events.js';

/** A scheduler the test runs by hand, standing in for requestAnimationFrame. */
function manualFrames(): { schedule: (fn: () => void) => void; runFrame: () => void; pending: () => number } {
  let queued: Array<() => void> = [];
  return {
    schedule: (fn) => void queued.push(fn),
    runFrame: () => {
      const run = queued;
      queued = [];
      for (const fn of run) fn();
    },
    pending: () => queued.length,
  };
}

/** Collects uncaught errors for the length of `fn` in place of mocha's handler (which fails the test). */
async function catchingUncaught(fn: (thrown: unknown[]) => Promise<void>): Promise<void> {
  const thrown: unknown[] = [];
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const onError = (err: unknown): void => void thrown.push(err);
  process.on('uncaughtException', onError);
  try {
    await fn(thrown);
  } finally {
    process.off('uncaughtException', onError);
    for (const l of saved) process.on('uncaughtException', l);
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

const logs = (n: number): string => JSON.stringify({ type: 'logs', deviceId: `d-${n}`, logs: [{ id: String(n), message: `line ${n}`, level: 'info', receivedAt: n }] });

describe('dashboard live events', () => {
  it('hands a frame\'s items over in one batch, in the order pushed, with one scheduled run per batch', () => {
    const frames = manualFrames();
    const batches: number[][] = [];
    const b = new Batcher<number>((batch) => batches.push([...batch]), frames.schedule);
    for (let i = 0; i < 5; i++) b.push(i);
    expect(frames.pending(), 'one run scheduled for five items').to.equal(1);
    expect(batches).to.deep.equal([]);
    frames.runFrame();
    b.push(5);
    b.push(6);
    frames.runFrame();
    frames.runFrame();
    expect(batches).to.deep.equal([[0, 1, 2, 3, 4], [5, 6]]);
  });

  it('flushes on demand and forgets what was queued when cleared (a stopped socket)', () => {
    const frames = manualFrames();
    const batches: string[][] = [];
    const b = new Batcher<string>((batch) => batches.push([...batch]), frames.schedule);
    b.push('a');
    b.flush();
    b.push('b');
    b.clear();
    frames.runFrame();
    b.push('c');
    frames.runFrame();
    expect(batches).to.deep.equal([['a'], ['c']]);
  });

  it('delivers a burst of server frames to each listener in one task: every event in order, and the batch once', () => {
    const frames = manualFrames();
    const socket = new LiveEvents(frames.schedule);
    const one: string[] = [];
    const batches: string[][] = [];
    socket.onEvent((e) => one.push(e.type === 'logs' ? (e.deviceId ?? '') : e.type));
    socket.onEvents((events) => batches.push(events.map((e) => (e.type === 'logs' ? (e.deviceId ?? '') : e.type))));
    socket.receive(JSON.stringify({ type: 'ready', apiKey: 'k', email: 'e@example.com' }));
    for (let i = 0; i < 100; i++) socket.receive(logs(i));
    socket.receive('not json');
    socket.receive(JSON.stringify({ no: 'type' }));
    expect(one, 'nothing before the frame').to.deep.equal([]);
    expect(socket.readies, 'ready counted when delivered').to.equal(0);
    frames.runFrame();
    const want = ['ready', ...Array.from({ length: 100 }, (_, i) => `d-${i}`)];
    expect(one).to.deep.equal(want);
    expect(batches).to.deep.equal([want]);
    expect(socket.readies).to.equal(1);
  });

  it('keeps delivering to the other listeners when one throws, and rethrows on a task of its own', async () => {
    const frames = manualFrames();
    const socket = new LiveEvents(frames.schedule);
    const seen: LiveEvent['type'][] = [];
    await catchingUncaught(async (thrown) => {
      socket.onEvent(() => {
        throw new Error('listener bug');
      });
      socket.onEvent((e) => seen.push(e.type));
      socket.receive(logs(1));
      socket.receive(logs(2));
      frames.runFrame();
      expect(seen).to.deep.equal(['logs', 'logs']);
      await tick();
      expect(thrown.map((e) => (e as Error).message)).to.deep.equal(['listener bug', 'listener bug']);
    });
  });

  it('runs a frame\'s work from a timer where no animation frame comes (a hidden tab; here, node)', async () => {
    let ran = 0;
    nextFrame(() => (ran += 1));
    expect(ran).to.equal(0);
    const started = Date.now();
    while (ran === 0 && Date.now() - started < 2000) await tick();
    expect(ran).to.equal(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(ran, 'once').to.equal(1);
  });

  it('calls every listener of a set even when an earlier one throws', async () => {
    const calls: number[] = [];
    await catchingUncaught(async (thrown) => {
      callEach<number>([(n) => calls.push(n), () => { throw new Error('boom'); }, (n) => calls.push(n * 10)], 4);
      expect(calls).to.deep.equal([4, 40]);
      await tick();
      expect(thrown.map((e) => (e as Error).message)).to.deep.equal(['boom']);
    });
  });
});
