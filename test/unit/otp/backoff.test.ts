/**
 * Restart backoff: the delay sequence on its own (doubling, cap, jitter, reset), then in supervisors
 * driven by a fake clock (@sinonjs/fake-timers) injected into the runtime: delayed restarts still
 * counted by the intensity window, messages kept across the wait, shutdown during the wait, the tree.
 */
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { ChildSpecError, dynamicSupervisor, RestartBackoff, Runtime, supervisor, type Cell, type ChildSpec, type TreeNode } from '../../../src/otp/index.js';
import { eventually } from '../../helpers/eventually.js';
import { counter, get, send, silent, sup } from './helpers.js';

const flags = { initialMs: 100, maxMs: 1000, resetAfterMs: 5000 };

describe('otp/restart-backoff', () => {
  describe('RestartBackoff.next', () => {
    const make = (random: () => number = () => 0.5) => {
      let t = 1_000_000;
      const b = new RestartBackoff(flags, () => t, random);
      // Each crash comes right after the previous restart was due: a crash loop.
      const crash = (): number => {
        const d = b.next();
        t += d;
        return d;
      };
      return { b, crash, advance: (ms: number) => (t += ms) };
    };

    it('restarts the first crash at once, then waits initialMs, doubling each crash in a row', () => {
      const { crash } = make();
      expect([crash(), crash(), crash(), crash(), crash()]).to.deep.equal([0, 100, 200, 400, 800]);
    });

    it('never waits longer than maxMs', () => {
      const { crash } = make();
      const delays = Array.from({ length: 60 }, crash);
      expect(delays.slice(5)).to.deep.equal(Array(55).fill(1000));
    });

    it('jitters each delay within ±20%, still capped at maxMs', () => {
      const low = make(() => 0);
      expect([low.crash(), low.crash(), low.crash(), low.crash(), low.crash(), low.crash()]).to.deep.equal([0, 80, 160, 320, 640, 800]);
      const high = make(() => 0.999999);
      expect([high.crash(), high.crash(), high.crash(), high.crash(), high.crash(), high.crash()]).to.deep.equal([0, 120, 240, 480, 960, 1000]);
      // The base doubles untouched by the jitter drawn before it: no drift.
      const any = make(Math.random);
      any.crash();
      const seen = new Set<number>();
      for (let i = 0; i < 2000; i++) {
        const base = Math.min(1000, 100 * 2 ** Math.min(i, 10));
        const d = any.crash();
        expect(d, `crash ${i + 2}`).to.be.within(Math.round(base * 0.8), Math.min(1000, Math.round(base * 1.2)));
        seen.add(d);
      }
      expect(seen.size, 'delays vary').to.be.greaterThan(50);
    });

    it('starts over once the child has run resetAfterMs since its latest restart', () => {
      const { b, crash, advance } = make();
      crash();
      crash();
      expect(crash()).to.equal(200);
      advance(4999);
      expect(b.current()).to.equal(200);
      expect(crash(), 'one ms short of stable').to.equal(400);
      advance(5000);
      expect(b.current()).to.equal(0);
      expect([crash(), crash()]).to.deep.equal([0, 100]);
    });

    it('defaults resetAfterMs to twice maxMs', () => {
      expect(supervisor({ strategy: 'one_for_one', backoff: { initialMs: 10, maxMs: 300 } }, []).flags.backoff).to.deep.equal({ initialMs: 10, maxMs: 300, resetAfterMs: 600 });
      expect(dynamicSupervisor({ backoff: { initialMs: 10, maxMs: 300, resetAfterMs: 50 } }).flags.backoff).to.deep.equal({ initialMs: 10, maxMs: 300, resetAfterMs: 50 });
      expect(dynamicSupervisor({}).flags.backoff).to.equal(null);
    });
  });

  describe('flag validation', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['a number', 5, /backoff must be null or an object \{initialMs, maxMs, resetAfterMs\?\}/],
      ['an array', [10, 100], /backoff must be null or an object/],
      ['a missing initialMs', { maxMs: 100 }, /backoff\.initialMs must be a positive finite number of milliseconds, got undefined/],
      ['a zero initialMs', { initialMs: 0, maxMs: 100 }, /backoff\.initialMs must be a positive finite number of milliseconds, got 0/],
      ['a string maxMs', { initialMs: 10, maxMs: '100' }, /backoff\.maxMs must be a positive finite number of milliseconds, got "100"/],
      ['an infinite maxMs', { initialMs: 10, maxMs: Infinity }, /backoff\.maxMs must be a positive finite number/],
      ['a NaN initialMs', { initialMs: NaN, maxMs: 100 }, /backoff\.initialMs must be a positive finite number/],
      ['a negative resetAfterMs', { initialMs: 10, maxMs: 100, resetAfterMs: -1 }, /backoff\.resetAfterMs must be a positive finite number of milliseconds, got -1/],
      ['maxMs below initialMs', { initialMs: 500, maxMs: 100 }, /backoff\.maxMs \(100\) must be at least backoff\.initialMs \(500\)/],
      ['an unknown key', { initialMs: 10, maxMS: 100 }, /backoff: unknown key "maxMS"; expected initialMs, maxMs, resetAfterMs/],
    ];
    for (const [what, backoff, message] of cases) {
      it(`rejects ${what} at start, naming the supervisor and the field`, async () => {
        for (const start of [
          supervisor({ strategy: 'one_for_one', backoff: backoff as never }, []),
          dynamicSupervisor({ backoff: backoff as never }),
        ]) {
          const spec = sup('root', { strategy: 'one_for_one' }, [{ id: 'bad', start }]);
          const err = await Runtime.start(spec, { logger: silent }).catch((e: unknown) => e);
          expect(err).to.be.instanceOf(ChildSpecError);
          expect((err as Error).message).to.contain('/root: child "bad": ').and.match(message);
        }
      });
    }

    it('accepts null and an absent backoff as immediate restarts', async () => {
      const rt = await Runtime.start(sup('root', { strategy: 'one_for_one', backoff: null }, [{ id: 'd', start: dynamicSupervisor({ backoff: null }) }]), { logger: silent });
      expect(rt.tree().backoff).to.equal(null);
      expect(rt.tree().children![0]!.backoff).to.equal(null);
      await rt.stop();
    });
  });

  describe('in a supervisor, on a fake clock', () => {
    let clock: FakeTimers.Clock;
    let rt: Runtime | undefined;
    let random: () => number;
    const start = async (root: ChildSpec, onRootFailure?: (r: string) => void): Promise<Runtime> => {
      rt = await Runtime.start(root, {
        logger: silent,
        onRootFailure,
        now: () => clock.now,
        timers: { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h as FakeTimers.TimerId) },
        random: () => random(),
      });
      return rt;
    };
    const cell = (path: string): Cell => {
      const c = rt!.find(path);
      if (!c) throw new Error(`no ${path}`);
      return c;
    };
    const nodeOf = (path: string): TreeNode => rt!.tree({ expand: path });
    /** Crashes the worker and waits until its supervisor has acted: restarted it, or started a wait. */
    const crash = async (path: string, why = 'boom'): Promise<number> => {
      const before = cell(path).restarts;
      send(rt!, path, { kind: 'crash', why });
      await eventually(() => expect(cell(path).waitingToRestart || cell(path).restarts > before).to.equal(true));
      return nodeOf(path).backoffMs;
    };
    /** Crashes the worker and lets its delay pass; returns the delay it waited. */
    const crashAndRestart = async (path: string): Promise<number> => {
      const before = cell(path).restarts;
      const delay = await crash(path);
      clock.tick(delay);
      await eventually(() => expect(cell(path).restarts).to.equal(before + 1));
      return delay;
    };

    beforeEach(() => {
      clock = FakeTimers.createClock(1_000_000);
      random = () => 0.5;
    });
    afterEach(async () => {
      await rt?.stop();
      rt = undefined;
    });

    it('waits before restarting a child that keeps crashing, doubling up to maxMs; status restarting meanwhile', async () => {
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: flags }, [counter('a', [])]));
      expect(await crashAndRestart('/root/a')).to.equal(0);
      const delay = await crash('/root/a');
      expect(delay).to.equal(100);
      expect(nodeOf('/root/a')).to.include({ status: 'restarting', backoffMs: 100, restarts: 1 });
      clock.tick(99);
      await new Promise((r) => setImmediate(r));
      expect(cell('/root/a').status).to.equal('restarting');
      clock.tick(1);
      await eventually(() => expect(cell('/root/a')).to.include({ status: 'running', restarts: 2 }));
      // The delay stays in force (shown) while the child is not yet stable.
      expect(nodeOf('/root/a')).to.include({ status: 'running', backoffMs: 100 });
      const delays = [];
      for (let i = 0; i < 6; i++) delays.push(await crashAndRestart('/root/a'));
      expect(delays).to.deep.equal([200, 400, 800, 1000, 1000, 1000]);
    });

    it('jitters the delays it waits', async () => {
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: flags }, [counter('a', [])]));
      random = () => 0;
      await crashAndRestart('/root/a');
      expect(await crashAndRestart('/root/a')).to.equal(80);
      random = () => 0.999999;
      expect(await crashAndRestart('/root/a')).to.equal(240);
    });

    it('starts over after a stable period: backoffMs drops to 0 and the next crash restarts at once', async () => {
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: flags }, [counter('a', [])]));
      for (let i = 0; i < 3; i++) await crashAndRestart('/root/a');
      expect(nodeOf('/root/a').backoffMs).to.equal(200);
      clock.tick(4999);
      expect(nodeOf('/root/a').backoffMs).to.equal(200);
      clock.tick(1);
      expect(nodeOf('/root/a').backoffMs).to.equal(0);
      expect(await crashAndRestart('/root/a')).to.equal(0);
      expect(await crashAndRestart('/root/a')).to.equal(100);
    });

    it('counts delayed restarts in the intensity window: one too many escalates as without backoff', async () => {
      await start(
        sup('root', { strategy: 'one_for_one', intensity: 5, period: 60_000 }, [
          sup('mid', { strategy: 'one_for_one', intensity: 3, period: 60_000, backoff: flags }, [counter('a', []), counter('b', [])]),
        ]),
      );
      send(rt!, '/root/mid/b', { kind: 'add', n: 9 });
      expect(await get(rt!, '/root/mid/b')).to.equal(9);
      const delays = [];
      for (let i = 0; i < 3; i++) delays.push(await crashAndRestart('/root/mid/a'));
      expect(delays).to.deep.equal([0, 100, 200]);
      expect(cell('/root/mid').restarts).to.equal(0);
      send(rt!, '/root/mid/a', { kind: 'crash', why: 'fourth' });
      await eventually(() => expect(cell('/root/mid').restarts).to.equal(1));
      expect(cell('/root/mid').lastCrash?.reason).to.contain('reached_max_restart_intensity (3 in 60000 ms)').and.contain('fourth');
      // The restarted supervisor made fresh children: b lost its state, a its backoff.
      expect(await get(rt!, '/root/mid/b')).to.equal(0);
      expect(nodeOf('/root/mid/a').backoffMs).to.equal(0);
      expect(await crashAndRestart('/root/mid/a')).to.equal(0);
    });

    it('keeps the messages sent during the wait and handles them after the restart', async () => {
      const log: string[] = [];
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: flags }, [counter('a', log)]));
      await crashAndRestart('/root/a');
      send(rt!, '/root/a', { kind: 'add', n: 1 });
      send(rt!, '/root/a', { kind: 'crash', why: 'again' });
      send(rt!, '/root/a', { kind: 'add', n: 2 });
      await eventually(() => expect(cell('/root/a').waitingToRestart).to.equal(true));
      send(rt!, '/root/a', { kind: 'add', n: 3 });
      send(rt!, '/root/a', { kind: 'add', n: 4 });
      const answer = get(rt!, '/root/a');
      await eventually(() => expect(nodeOf('/root/a').mailbox).to.equal(4));
      expect(log.filter((l) => l === 'init a')).to.have.length(2);
      clock.tick(100);
      expect(await answer).to.equal(9);
      expect(log.filter((l) => l === 'init a')).to.have.length(3);
      expect(nodeOf('/root/a').mailbox).to.equal(0);
    });

    it('stops at once on shutdown during the wait, and never restarts the child', async () => {
      const log: string[] = [];
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: { initialMs: 60_000, maxMs: 60_000 } }, [counter('a', log)]));
      await crashAndRestart('/root/a');
      await crash('/root/a');
      expect(nodeOf('/root/a')).to.include({ status: 'restarting', backoffMs: 60_000 });
      send(rt!, '/root/a', { kind: 'add', n: 1 });
      const a = cell('/root/a');
      const stopping = rt!.stop();
      rt = undefined;
      // Resolves without the clock moving: nothing waits for the 60 s delay.
      await stopping;
      expect(a.status).to.equal('stopped');
      expect(clock.countTimers()).to.equal(0);
      clock.tick(120_000);
      await new Promise((r) => setImmediate(r));
      expect(a.status).to.equal('stopped');
      expect(log).to.deep.equal(['init a', 'terminate a boom', 'init a', 'terminate a boom']);
    });

    it('lets a kill during the wait change nothing, and a terminateChild end the wait', async () => {
      await start(
        sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000 }, [
          { id: 'dyn', start: dynamicSupervisor({ childIntensity: 50, childPeriod: 60_000, backoff: flags }) },
        ]),
      );
      const dyn = rt!.dynamicSupervisor('/root/dyn');
      await dyn.startChild(counter('c', []));
      await crashAndRestart('/root/dyn/c');
      await crash('/root/dyn/c');
      const killed = await rt!.kill('/root/dyn/c');
      expect(killed).to.include({ status: 'restarting', restarts: 1 });
      expect(nodeOf('/root/dyn/c').backoffMs).to.equal(100);
      clock.tick(100);
      await eventually(() => expect(cell('/root/dyn/c')).to.include({ status: 'running', restarts: 2 }));
      await crash('/root/dyn/c');
      expect(await dyn.terminateChild('c')).to.equal(true);
      expect(clock.countTimers()).to.equal(0);
      expect(dyn.size).to.equal(0);
    });

    it('keeps one backoff per child of a dynamic supervisor, counted in its per-child budget', async () => {
      await start(
        sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000 }, [
          { id: 'dyn', start: dynamicSupervisor({ intensity: 0, childIntensity: 3, childPeriod: 60_000, backoff: flags }) },
        ]),
      );
      const dyn = rt!.dynamicSupervisor('/root/dyn');
      await dyn.startChild(counter('bad', [], { restart: 'transient' }));
      await dyn.startChild(counter('good', [], { restart: 'transient' }));
      expect([await crashAndRestart('/root/dyn/bad'), await crashAndRestart('/root/dyn/bad'), await crashAndRestart('/root/dyn/bad')]).to.deep.equal([0, 100, 200]);
      // A sibling's first crash is its own: at once.
      expect(await crashAndRestart('/root/dyn/good')).to.equal(0);
      send(rt!, '/root/dyn/bad', { kind: 'crash', why: 'fourth' });
      await eventually(() => expect(dyn.childByName('bad')).to.equal(undefined));
      expect(cell('/root/dyn').restarts).to.equal(0);
      expect(dyn.size).to.equal(1);
    });

    it('makes the siblings restarted with a crashing child (one_for_all) wait with it', async () => {
      const log: string[] = [];
      await start(sup('root', { strategy: 'one_for_all', intensity: 100, period: 60_000, backoff: flags }, [counter('a', log), counter('b', log)]));
      await crashAndRestart('/root/a');
      log.length = 0;
      await crash('/root/a');
      expect(log).to.deep.equal(['terminate b shutdown', 'terminate a boom']);
      expect(nodeOf('/root/a')).to.include({ status: 'restarting', backoffMs: 100 });
      expect(nodeOf('/root/b')).to.include({ status: 'restarting', backoffMs: 100 });
      clock.tick(100);
      await eventually(() => expect(log).to.deep.equal(['terminate b shutdown', 'terminate a boom', 'init a', 'init b']));
      expect(rt!.tree().counts).to.deep.equal({ running: 2 });
    });

    it('delays the restart of a crashed child supervisor too', async () => {
      const log: string[] = [];
      await start(sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: flags }, [sup('mid', { strategy: 'one_for_one' }, [counter('a', log)])]));
      await rt!.kill('/root/mid');
      const second = rt!.kill('/root/mid');
      await eventually(() => expect(cell('/root/mid').waitingToRestart).to.equal(true));
      expect(nodeOf('/root/mid')).to.include({ status: 'restarting', backoffMs: 100 });
      expect(log).to.deep.equal(['init a', 'terminate a shutdown', 'init a', 'terminate a shutdown']);
      clock.tick(100);
      await second;
      expect(cell('/root/mid')).to.include({ status: 'running', restarts: 2 });
      expect(log.at(-1)).to.equal('init a');
    });

    it('shows backoff on supervisors and backoffMs on every child in the tree', async () => {
      await start(
        sup('root', { strategy: 'one_for_one', intensity: 100, period: 60_000 }, [
          sup('mid', { strategy: 'one_for_one', intensity: 100, period: 60_000, backoff: { initialMs: 10, maxMs: 40 } }, [counter('a', []), counter('b', [])]),
          { id: 'dyn', start: dynamicSupervisor({ backoff: flags }) },
        ]),
      );
      await rt!.dynamicSupervisor('/root/dyn').startChild(counter('c', []));
      const t = rt!.tree();
      expect(t).to.include({ backoff: null, backoffMs: 0 });
      const mid = t.children![0]!;
      const dyn = t.children![1]!;
      expect(mid.backoff).to.deep.equal({ initialMs: 10, maxMs: 40, resetAfterMs: 80 });
      expect(dyn.backoff).to.deep.equal(flags);
      const all: TreeNode[] = [];
      const walk = (n: TreeNode): void => {
        all.push(n);
        n.children?.forEach(walk);
      };
      walk(t);
      expect(all.map((n) => [n.path, n.backoffMs])).to.deep.equal([
        ['/root', 0],
        ['/root/mid', 0],
        ['/root/mid/a', 0],
        ['/root/mid/b', 0],
        ['/root/dyn', 0],
        ['/root/dyn/c', 0],
      ]);
      await crashAndRestart('/root/mid/a');
      await crash('/root/mid/a');
      const during = rt!.tree();
      expect(JSON.parse(JSON.stringify(during))).to.deep.equal(during);
      expect(during.children![0]!.children!.map((n) => [n.name, n.status, n.backoffMs])).to.deep.equal([
        ['a', 'restarting', 10],
        ['b', 'running', 0],
      ]);
      expect(during.children![0]!.counts).to.deep.equal({ restarting: 1, running: 1 });
    });
  });
});
