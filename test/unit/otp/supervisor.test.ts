import { expect } from 'chai';
import { ChildSpecError, Runtime, StartError, supervisor, worker } from '../../../src/otp/index.js';
import { eventually } from '../../helpers/eventually.js';
import { counter, get, send, silent, startTree, sup } from './helpers.js';

describe('otp/supervisor', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  describe('start', () => {
    it('starts children in order and stops them in reverse', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', log), counter('b', log), counter('c', log)]));
      expect(log).to.deep.equal(['init a', 'init b', 'init c']);
      await rt.stop();
      rt = undefined;
      expect(log.slice(3)).to.deep.equal(['terminate c shutdown', 'terminate b shutdown', 'terminate a shutdown']);
    });

    it('fails its start, stopping what it started, when a child cannot start', async () => {
      const log: string[] = [];
      const err = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', log), counter('b', log, { failInit: () => true })])).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StartError);
      expect((err as Error).message).to.contain('/root/b failed to start').and.contain('b cannot start');
      expect(log).to.deep.equal(['init a', 'terminate a shutdown']);
    });

    it('rejects invalid specs with a precise error', async () => {
      const bad = [
        { id: 'has space', start: worker({ init: () => 0 }) },
        { id: 'x', start: worker({ init: () => 0 }), restart: 'sometimes' as never },
        { id: 'x', start: supervisor({ strategy: 'one_for_none' as never }, []) },
        { id: 'x', start: supervisor({ strategy: 'one_for_one', intensity: -1 }, []) },
        { id: 'x', start: supervisor({ strategy: 'one_for_one' }, [counter('a', []), counter('a', [])]) },
      ];
      for (const spec of bad) {
        const err = await Runtime.start(spec, { logger: silent }).catch((e: unknown) => e);
        expect(err, JSON.stringify(spec.id)).to.be.instanceOf(ChildSpecError);
      }
    });

    it('supports async init, holding messages until it is done', async () => {
      rt = await startTree(
        sup('root', { strategy: 'one_for_one' }, [
          {
            id: 'slow',
            start: worker<{ v: string }, { reply: (v: string) => void }>({
              init: async () => {
                await new Promise((r) => setTimeout(r, 30));
                return { v: 'ready' };
              },
              handle: (s, m) => void m.reply(s.v),
            }),
          },
        ]),
      );
      const ref = rt.whereis<{ reply: (v: string) => void }>('/root/slow');
      expect(await ref!.call<string>((reply) => ({ reply }), 1000)).to.equal('ready');
    });
  });

  describe('one_for_one', () => {
    it('restarts only the crashed child with a fresh state', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', log), counter('b', log)]));
      send(rt, '/root/a', { kind: 'add', n: 5 });
      send(rt, '/root/b', { kind: 'add', n: 7 });
      send(rt, '/root/a', { kind: 'crash', why: 'boom' });
      expect(await get(rt, '/root/a')).to.equal(0);
      expect(await get(rt, '/root/b')).to.equal(7);
      expect(log).to.include('terminate a boom');
      expect(log.filter((l) => l === 'init b')).to.have.length(1);
      const a = rt.find('/root/a')!;
      expect(a.restarts).to.equal(1);
      expect(a.lastCrash?.reason).to.equal('boom');
    });

    it('keeps the messages queued after the crashing one', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', log)]));
      send(rt, '/root/a', { kind: 'add', n: 1 });
      send(rt, '/root/a', { kind: 'crash', why: 'boom' });
      send(rt, '/root/a', { kind: 'add', n: 2 });
      send(rt, '/root/a', { kind: 'add', n: 3 });
      expect(await get(rt, '/root/a')).to.equal(5);
    });

    it('keeps the ActorRef valid across the restart', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', [])]));
      const ref = rt.whereis('/root/a')!;
      send(rt, '/root/a', { kind: 'crash', why: 'x' });
      ref.send({ kind: 'add', n: 4 });
      expect(await get(rt, '/root/a')).to.equal(4);
      expect(ref.alive()).to.equal(true);
    });
  });

  describe('one_for_all', () => {
    it('restarts every child, terminating in reverse and starting in order', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_all' }, [counter('a', log), counter('b', log), counter('c', log)]));
      send(rt, '/root/a', { kind: 'add', n: 1 });
      send(rt, '/root/c', { kind: 'add', n: 1 });
      log.length = 0;
      send(rt, '/root/b', { kind: 'crash', why: 'boom' });
      await eventually(() => expect(log).to.have.length(6));
      expect(log).to.deep.equal(['terminate c shutdown', 'terminate b boom', 'terminate a shutdown', 'init a', 'init b', 'init c']);
      expect(await get(rt, '/root/a')).to.equal(0);
      expect(await get(rt, '/root/c')).to.equal(0);
    });
  });

  describe('rest_for_one', () => {
    it('restarts the crashed child and those started after it', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'rest_for_one' }, [counter('a', log), counter('b', log), counter('c', log)]));
      for (const p of ['a', 'b', 'c']) send(rt, `/root/${p}`, { kind: 'add', n: 1 });
      log.length = 0;
      send(rt, '/root/b', { kind: 'crash', why: 'boom' });
      await eventually(() => expect(log).to.have.length(4));
      expect(log).to.deep.equal(['terminate c shutdown', 'terminate b boom', 'init b', 'init c']);
      expect(await get(rt, '/root/a')).to.equal(1);
      expect(await get(rt, '/root/b')).to.equal(0);
      expect(await get(rt, '/root/c')).to.equal(0);
    });
  });

  describe('restart types', () => {
    it('does not restart a temporary child', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('t', log, { restart: 'temporary' })]));
      send(rt, '/root/t', { kind: 'crash', why: 'boom' });
      await eventually(() => expect(rt!.find('/root/t')!.status).to.equal('stopped'));
      expect(log).to.deep.equal(['init t', 'terminate t boom']);
    });

    it('restarts a transient child after a crash but not after a normal exit', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('t', log, { restart: 'transient' })]));
      send(rt, '/root/t', { kind: 'crash', why: 'boom' });
      await eventually(() => expect(log).to.include('init t').and.have.length(3));
      send(rt, '/root/t', { kind: 'exit' });
      await eventually(() => expect(rt!.find('/root/t')!.status).to.equal('stopped'));
      expect(log.at(-1)).to.equal('terminate t done');
    });

    it('restarts a permanent child even after a normal exit', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('p', log)]));
      send(rt, '/root/p', { kind: 'exit' });
      await eventually(() => expect(rt!.find('/root/p')!.restarts).to.equal(1));
      expect(rt.find('/root/p')!.status).to.equal('running');
    });
  });

  describe('restart intensity', () => {
    it('escalates to the parent when exceeded, which restarts the whole subtree', async () => {
      const log: string[] = [];
      rt = await startTree(
        sup('root', { strategy: 'one_for_one', intensity: 5, period: 60_000 }, [sup('mid', { strategy: 'one_for_one', intensity: 2, period: 60_000 }, [counter('a', log), counter('b', log)])]),
      );
      send(rt, '/root/mid/b', { kind: 'add', n: 9 });
      for (let i = 0; i < 2; i++) {
        send(rt, '/root/mid/a', { kind: 'crash', why: `c${i}` });
        await eventually(() => expect(rt!.find('/root/mid/a')!.restarts).to.equal(i + 1));
      }
      expect(await get(rt, '/root/mid/b')).to.equal(9);
      expect(rt.find('/root/mid')!.restarts).to.equal(0);
      send(rt, '/root/mid/a', { kind: 'crash', why: 'third' });
      await eventually(() => expect(rt!.find('/root/mid')!.restarts).to.equal(1));
      const mid = rt.find('/root/mid')!;
      expect(mid.lastCrash?.reason).to.contain('reached_max_restart_intensity').and.contain('third');
      expect(await get(rt, '/root/mid/b')).to.equal(0);
      // The restarted supervisor starts with a fresh window.
      send(rt, '/root/mid/a', { kind: 'crash', why: 'again' });
      await eventually(() => expect(rt!.find('/root/mid/a')!.restarts).to.equal(1));
      expect(rt.find('/root/mid')!.restarts).to.equal(1);
    });

    it('forgets restarts older than the period', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one', intensity: 1, period: 80 }, [counter('a', [])]));
      let failed = false;
      rt.events.on('root_failure', () => (failed = true));
      send(rt, '/root/a', { kind: 'crash', why: '1' });
      await eventually(() => expect(rt!.find('/root/a')!.restarts).to.equal(1));
      await new Promise((r) => setTimeout(r, 120));
      send(rt, '/root/a', { kind: 'crash', why: '2' });
      await eventually(() => expect(rt!.find('/root/a')!.restarts).to.equal(2));
      expect(failed).to.equal(false);
    });

    it('reports the root giving up to the application', async () => {
      let reason = '';
      rt = await startTree(sup('root', { strategy: 'one_for_one', intensity: 0, period: 1000 }, [counter('a', [])]), (r) => (reason = r));
      send(rt, '/root/a', { kind: 'crash', why: 'fatal' });
      await eventually(() => expect(reason).to.contain('reached_max_restart_intensity'));
      expect(rt.root.status).to.equal('stopped');
    });

    it('counts a failing restart as another crash, up to the root', async () => {
      let failing = false;
      let rootReason = '';
      rt = await startTree(
        sup('root', { strategy: 'one_for_one', intensity: 2, period: 60_000 }, [sup('mid', { strategy: 'one_for_one', intensity: 3, period: 60_000 }, [counter('a', [], { failInit: () => failing })])]),
        (r) => (rootReason = r),
      );
      failing = true;
      send(rt, '/root/mid/a', { kind: 'crash', why: 'first' });
      // a cannot restart: mid exhausts its intensity, then mid's own restarts fail and exhaust root's.
      await eventually(() => expect(rootReason).to.contain('reached_max_restart_intensity'));
      expect(rt.find('/root/mid/a')!.lastCrash?.reason).to.contain('a cannot start');
      expect(rt.find('/root/mid')!.lastCrash?.reason).to.contain('a cannot start');
    });
  });

  describe('kill', () => {
    it('crashes a worker as if it had thrown', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', [])]));
      send(rt, '/root/a', { kind: 'add', n: 3 });
      expect(await get(rt, '/root/a')).to.equal(3);
      const cell = await rt.kill('/root/a');
      expect(cell.restarts).to.equal(1);
      expect(cell.lastCrash?.reason).to.contain('killed');
      expect(await get(rt, '/root/a')).to.equal(0);
    });

    it('crashes a supervisor, restarting its subtree under its parent', async () => {
      const log: string[] = [];
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [sup('mid', { strategy: 'one_for_one' }, [counter('a', log)])]));
      await rt.kill('/root/mid');
      expect(rt.find('/root/mid')!.restarts).to.equal(1);
      expect(log).to.deep.equal(['init a', 'terminate a shutdown', 'init a']);
    });

    it('refuses unknown paths and the root', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', [])]));
      await rt.kill('/root/nope').then(
        () => expect.fail('should reject'),
        (e: Error) => expect(e.name).to.equal('NoSuchActor'),
      );
      await rt.kill('/root').then(
        () => expect.fail('should reject'),
        (e: Error) => expect(e.message).to.contain('cannot be killed'),
      );
    });
  });
});
