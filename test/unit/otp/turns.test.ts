/**
 * Turns (src/otp/turns.ts): per key, turns at least `ms` apart; a lone one at once, one sooner after
 * the key's previous turn from a timer due when the rest of `ms` has passed, keys apart.
 */
import { install } from '@sinonjs/fake-timers';
import { expect } from 'chai';
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
});
