import { expect } from 'chai';
import { IdleSweep, sweepResolution, type IdleWatched } from '../../../src/tcp/idle-sweep.js';

/** A connection as the sweep sees it, with a write queue the test sets. */
function conn(log: string[], name: string): IdleWatched & { queue: number } {
  return {
    idleSince: 0,
    idleSlot: -1,
    idleQueued: 0,
    queue: 0,
    get buffered() {
      return this.queue;
    },
    fireIdle: () => void log.push(name),
  };
}

describe('IdleSweep (idle timeouts of many connections on one timer)', () => {
  let t: number;
  const clock = () => t;
  beforeEach(() => (t = 1000));

  it('ends a connection silent for the timeout, not before, and only once', () => {
    const log: string[] = [];
    const sweep = new IdleSweep(100, 10, clock);
    const a = conn(log, 'a');
    sweep.add(a);
    t += 99;
    sweep.sweep();
    expect(log).to.deep.equal([]);
    t += 1;
    sweep.sweep();
    expect(log).to.deep.equal(['a']);
    t += 500;
    sweep.sweep();
    expect(log).to.deep.equal(['a']);
    expect(sweep.size).to.equal(0);
    expect(a.idleSlot).to.equal(-1);
  });

  it('counts from the last activity the connection noted', () => {
    const log: string[] = [];
    const sweep = new IdleSweep(100, 10, clock);
    const a = conn(log, 'a');
    const b = conn(log, 'b');
    sweep.add(a);
    sweep.add(b);
    for (let i = 0; i < 10; i++) {
      t += 60;
      a.idleSince = t;
      sweep.sweep();
    }
    expect(log).to.deep.equal(['b']);
    t += 100;
    sweep.sweep();
    expect(log).to.deep.equal(['b', 'a']);
  });

  it('treats a write queue that shrank since the last write as activity, one that did not as silence', () => {
    const log: string[] = [];
    const sweep = new IdleSweep(100, 10, clock);
    const slow = conn(log, 'slow');
    const stuck = conn(log, 'stuck');
    sweep.add(slow);
    sweep.add(stuck);
    // Both wrote a large reply that the kernel could not take at once.
    slow.idleQueued = slow.queue = 50_000;
    stuck.idleQueued = stuck.queue = 50_000;
    t += 50;
    slow.queue = 20_000;
    t += 50;
    sweep.sweep();
    expect(log).to.deep.equal(['stuck']);
    // The reader of `slow` stops taking anything: silent from the sweep that saw it move.
    t += 99;
    sweep.sweep();
    expect(log).to.deep.equal(['stuck']);
    t += 1;
    sweep.sweep();
    expect(log).to.deep.equal(['stuck', 'slow']);
  });

  it('forgets a removed connection, keeps the others in place, and runs its timer only while it watches any', () => {
    const log: string[] = [];
    const sweep = new IdleSweep(100, 10, clock);
    const cs = ['a', 'b', 'c', 'd'].map((n) => conn(log, n));
    for (const c of cs) sweep.add(c);
    const timer = () => (sweep as unknown as { timer: NodeJS.Timeout | null }).timer;
    expect(timer()).to.not.equal(null);
    sweep.remove(cs[1] as IdleWatched);
    sweep.remove(cs[1] as IdleWatched);
    expect(sweep.size).to.equal(3);
    t += 100;
    sweep.sweep();
    expect(log.sort()).to.deep.equal(['a', 'c', 'd']);
    expect(timer()).to.equal(null);
    sweep.add(cs[1] as IdleWatched);
    expect(timer()).to.not.equal(null);
    sweep.remove(cs[1] as IdleWatched);
    expect(timer()).to.equal(null);
  });

  it('lets a callback open and close connections during a sweep; one it closed is not idle any more', () => {
    const log: string[] = [];
    const sweep = new IdleSweep(100, 10, clock);
    const late = conn(log, 'late');
    const other = conn(log, 'other');
    const first = conn(log, 'first');
    // Found first (the walk starts at the last added), it closes the two found silent with it.
    const a = { ...conn(log, 'a'), fireIdle: () => (log.push('a'), sweep.remove(other), sweep.remove(first), sweep.add(late)) };
    sweep.add(first);
    sweep.add(other);
    sweep.add(a);
    t += 100;
    sweep.sweep();
    expect(log).to.deep.equal(['a']);
    expect(sweep.size).to.equal(1);
    t += 100;
    sweep.sweep();
    expect(log).to.include('late');
    expect(sweep.size).to.equal(0);
  });

  it('sweeps at a twentieth of the timeout, between 5 ms and a second', () => {
    expect(sweepResolution(60_000)).to.equal(1000);
    expect(sweepResolution(300_000)).to.equal(1000);
    expect(sweepResolution(2000)).to.equal(100);
    expect(sweepResolution(40)).to.equal(5);
  });
});
