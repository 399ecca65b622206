/**
 * Turns (src/otp/turns.ts): per key, turns at least `ms` apart; a lone one at once, one sooner after
 * the key's previous turn from a timer due when the rest of `ms` has passed, keys apart.
 */
import { install } from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Turns } from '../../../src/otp/turns.js';

describe('Turns', () => {
  it('runs a key’s first turn at once, and one sooner than `ms` after the last turn taken once the rest has passed', async () => {
    const clock = install({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const turns = new Turns<string>(20);
      const ran: string[] = [];
      expect(turns.schedule('a', () => ran.push('a1')), 'at once: no timer').to.equal(null);
      expect(ran).to.deep.equal(['a1']);
      turns.taken('a');
      await clock.tickAsync(5);
      expect(turns.wait('a')).to.equal(15);
      const timer = turns.schedule('a', () => ran.push('a2'));
      expect(timer).to.not.equal(null);
      // Another key is not held by this one's turn.
      expect(turns.schedule('b', () => ran.push('b1'))).to.equal(null);
      await clock.tickAsync(14);
      expect(ran).to.deep.equal(['a1', 'b1']);
      await clock.tickAsync(1);
      expect(ran).to.deep.equal(['a1', 'b1', 'a2']);
      // Not taken: the next turn waits from the last one taken, which is past `ms` by now.
      expect(turns.wait('a')).to.equal(0);
    } finally {
      clock.uninstall();
    }
  });

  it('counts a turn from when it is taken, may be cleared and run sooner, and forgets a key', async () => {
    let now = 1000;
    const turns = new Turns<number>(50, () => now);
    turns.taken(7);
    now += 10;
    expect(turns.wait(7)).to.equal(40);
    let ran = 0;
    const timer = turns.schedule(7, () => (ran += 1));
    expect(timer).to.not.equal(null);
    // The caller's own reason to go sooner (an event that must not overtake what waits).
    clearTimeout(timer as NodeJS.Timeout);
    expect(ran).to.equal(0);
    now += 100;
    expect(turns.wait(7)).to.equal(0);
    turns.taken(7);
    expect(turns.size).to.equal(1);
    turns.forget(7);
    expect(turns.size).to.equal(0);
    expect(turns.wait(7)).to.equal(0);
    expect(turns.schedule(7, () => (ran += 1))).to.equal(null);
    expect(ran).to.equal(1);
  });

  it('does not hold the process open while a turn waits', () => {
    let now = 0;
    const turns = new Turns<string>(1000, () => now);
    turns.taken('k');
    const timer = turns.schedule('k', () => undefined) as NodeJS.Timeout;
    try {
      expect(timer.hasRef()).to.equal(false);
    } finally {
      clearTimeout(timer);
      now += 1;
    }
  });

  describe('scheduleAligned (turns of many keys on one grid of `ms`)', () => {
    it('runs the waiting turns of several keys, and of two Turns of one clock, at the same grid point from one timer, in the order scheduled', async () => {
      const clock = install({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      try {
        const a = new Turns<string>(20);
        const b = new Turns<string>(20);
        const ran: Array<[string, number]> = [];
        const at = (name: string) => () => void ran.push([name, performance.now()]);
        await clock.tickAsync(3);
        a.taken('k1');
        await clock.tickAsync(9);
        a.taken('k2');
        b.taken('k3');
        await clock.tickAsync(2);
        // Taken 11, 2 and 2 ms ago: plain schedule would run them at 23, 32 and 32, each from a timer of its own.
        expect(a.scheduleAligned('k1', at('k1'))).to.not.equal(null);
        expect(a.scheduleAligned('k2', at('k2'))).to.not.equal(null);
        expect(b.scheduleAligned('k3', at('k3'))).to.not.equal(null);
        expect(clock.countTimers(), 'one timer for the grid point').to.equal(1);
        await clock.tickAsync(5);
        expect(ran).to.deep.equal([]);
        await clock.tickAsync(1);
        expect(ran).to.deep.equal([
          ['k1', 20],
          ['k2', 20],
          ['k3', 20],
        ]);
        expect(clock.countTimers()).to.equal(0);
      } finally {
        clock.uninstall();
      }
    });

    it('takes at most one turn of a key per step, runs one whose last turn was in an earlier step at once, and keeps a key apart from the others', async () => {
      let now = 100;
      const turns = new Turns<string>(20, () => now);
      let ran = 0;
      // Never taken: at once.
      expect(turns.scheduleAligned('k', () => (ran += 1))).to.equal(null);
      turns.taken('k');
      now = 119;
      const pending = turns.scheduleAligned('k', () => (ran += 1));
      expect(pending, 'its last turn is in this step (100–120)').to.not.equal(null);
      // Another key has had no turn: at once, whatever k waits for.
      expect(turns.scheduleAligned('other', () => (ran += 10))).to.equal(null);
      expect(ran).to.equal(11);
      pending?.cancel();
      now = 120;
      expect(turns.scheduleAligned('k', () => (ran += 1)), 'the next step has begun').to.equal(null);
      expect(ran).to.equal(12);
    });

    it('cancels one turn of a grid point and leaves the others; the last one cancelled clears the timer', async () => {
      const clock = install({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      try {
        const turns = new Turns<string>(20);
        turns.taken('a');
        turns.taken('b');
        const ran: string[] = [];
        const pa = turns.scheduleAligned('a', () => ran.push('a'));
        const pb = turns.scheduleAligned('b', () => ran.push('b'));
        pa?.cancel();
        await clock.tickAsync(20);
        expect(ran).to.deep.equal(['b']);
        turns.taken('a');
        const again = turns.scheduleAligned('a', () => ran.push('a2'));
        expect(clock.countTimers()).to.equal(1);
        again?.cancel();
        expect(clock.countTimers(), 'nothing left to run at that point').to.equal(0);
        pb?.cancel();
        await clock.tickAsync(40);
        expect(ran).to.deep.equal(['b']);
      } finally {
        clock.uninstall();
      }
    });

    it('does not hold the process open while an aligned turn waits', function () {
      this.timeout(20_000);
      // A process whose only work left is a turn due in 8 s exits at once if the grid's timer is unref'd.
      const script = `import { Turns } from ${JSON.stringify(pathToFileURL(fileURLToPath(new URL('../../../src/otp/turns.ts', import.meta.url))).href)}; const t = new Turns(8000); t.taken('k'); t.scheduleAligned('k', () => console.log('ran')); console.log('scheduled');`;
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
      expect(r.stdout.trim()).to.equal('scheduled');
      expect(r.status).to.equal(0);
      expect(performance.now() - t0).to.be.below(7000);
    });
  });
});
