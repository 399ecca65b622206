import { expect } from 'chai';
import { dynamicSupervisor, MaxChildrenError, worker, type ChildSpec, type Runtime } from '../../../src/otp/index.js';
import { eventually } from '../../helpers/eventually.js';
import { counter, get, send, startTree, sup } from './helpers.js';

describe('otp/dynamic-supervisor', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  const tree = (flags: Parameters<typeof dynamicSupervisor>[0]) =>
    startTree(sup('root', { strategy: 'one_for_one', intensity: 1, period: 60_000 }, [{ id: 'dyn', start: dynamicSupervisor(flags) }]));

  describe('startChild', () => {
    it('starts children on demand and lists them', async () => {
      rt = await tree({});
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const log: string[] = [];
      await dyn.startChild(counter('c-1', log));
      await dyn.startChild(counter('c-2', log));
      expect(dyn.size).to.equal(2);
      expect(log).to.deep.equal(['init c-1', 'init c-2']);
      send(rt, '/root/dyn/c-2', { kind: 'add', n: 2 });
      expect(await get(rt, '/root/dyn/c-2')).to.equal(2);
    });

    it('refuses children beyond maxChildren', async () => {
      rt = await tree({ maxChildren: 2 });
      const dyn = rt.dynamicSupervisor('/root/dyn');
      await dyn.startChild(counter('a', []));
      await dyn.startChild(counter('b', []));
      const err = await dyn.startChild(counter('c', [])).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(MaxChildrenError);
      await dyn.terminateChild('a');
      await dyn.startChild(counter('c', []));
      expect(dyn.size).to.equal(2);
    });

    it('rejects a child whose init fails and keeps no trace of it', async () => {
      rt = await tree({});
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const err = await dyn.startChild(counter('x', [], { failInit: () => true })).catch((e: unknown) => e);
      expect((err as Error).message).to.contain('x cannot start');
      expect(dyn.size).to.equal(0);
      await dyn.startChild(counter('x', []));
      expect(dyn.size).to.equal(1);
    });

    it('rejects a child whose asynchronous init fails, and one whose id is taken, keeping no trace of either', async () => {
      rt = await tree({});
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const slow = (id: string, fail: boolean): ChildSpec => ({
        id,
        start: worker<null, never>({
          init: async () => {
            await new Promise((r) => setTimeout(r, 5));
            if (fail) throw new Error(`${id} failed later`);
            return null;
          },
        }),
      });
      const err = await dyn.startChild(slow('late', true)).catch((e: unknown) => e);
      expect((err as Error).message).to.equal('late failed later');
      expect(dyn.size).to.equal(0);
      const ref = await dyn.startChild(slow('late', false));
      expect(ref.alive()).to.equal(true);
      const taken = await dyn.startChild(slow('late', false)).catch((e: unknown) => e);
      expect((taken as Error).message).to.contain('already has a child late');
      expect(dyn.size).to.equal(1);
    });
  });

  describe('crashes', () => {
    it('restarts only the crashed child', async () => {
      rt = await tree({});
      const dyn = rt.dynamicSupervisor('/root/dyn');
      await dyn.startChild(counter('a', []));
      await dyn.startChild(counter('b', []));
      send(rt, '/root/dyn/a', { kind: 'add', n: 1 });
      send(rt, '/root/dyn/b', { kind: 'add', n: 1 });
      send(rt, '/root/dyn/a', { kind: 'crash', why: 'x' });
      expect(await get(rt, '/root/dyn/a')).to.equal(0);
      expect(await get(rt, '/root/dyn/b')).to.equal(1);
    });

    it('with a per-child budget, stops only the child that keeps crashing', async () => {
      rt = await tree({ intensity: 0, childIntensity: 2, childPeriod: 60_000 });
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const log: string[] = [];
      await dyn.startChild(counter('bad', log, { restart: 'transient' }));
      await dyn.startChild(counter('good', log, { restart: 'transient' }));
      send(rt, '/root/dyn/good', { kind: 'add', n: 1 });
      for (let i = 0; i < 3; i++) send(rt, '/root/dyn/bad', { kind: 'crash', why: `c${i}` });
      await eventually(() => expect(dyn.childByName('bad')).to.equal(undefined));
      expect(log.at(-1)).to.match(/^terminate bad restart_intensity: c2/);
      expect(dyn.size).to.equal(1);
      expect(await get(rt, '/root/dyn/good')).to.equal(1);
      expect(rt.find('/root/dyn')!.restarts).to.equal(0);
    });

    it('fires a monitor at every restart, a stop monitor once when the child stops past its budget, and at once on a stopped ref', async () => {
      rt = await tree({ intensity: 0, childIntensity: 2, childPeriod: 60_000 });
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const ref = await dyn.startChild(counter('bad', [], { restart: 'transient' }));
      const ends: string[] = [];
      const stops: string[] = [];
      ref.monitor((r) => ends.push(r));
      ref.monitorStop((r) => stops.push(r));
      send(rt, '/root/dyn/bad', { kind: 'crash', why: 'c0' });
      await eventually(() => expect(rt!.find('/root/dyn/bad')!.restarts).to.equal(1));
      expect(ends).to.deep.equal(['c0']);
      expect(stops).to.deep.equal([]);
      // A removed stop monitor is not called.
      const off = ref.monitorStop((r) => stops.push(`removed ${r}`));
      off();
      for (let i = 1; i < 3; i++) send(rt, '/root/dyn/bad', { kind: 'crash', why: `c${i}` });
      await eventually(() => expect(stops).to.deep.equal(['restart_intensity: c2']));
      expect(ends).to.deep.equal(['c0']);
      const late: string[] = [];
      ref.monitorStop((r) => late.push(r));
      await eventually(() => expect(late).to.deep.equal(['noproc']));
    });

    it('without a per-child budget, fails to its parent when its intensity is exceeded', async () => {
      rt = await tree({ intensity: 1, period: 60_000 });
      const dyn = rt.dynamicSupervisor('/root/dyn');
      await dyn.startChild(counter('a', []));
      send(rt, '/root/dyn/a', { kind: 'crash', why: '1' });
      await eventually(() => expect(rt!.find('/root/dyn/a')!.restarts).to.equal(1));
      send(rt, '/root/dyn/a', { kind: 'crash', why: '2' });
      await eventually(() => expect(rt!.find('/root/dyn')!.restarts).to.equal(1));
      // A restarted dynamic supervisor starts empty, as in OTP.
      expect(dyn.size).to.equal(0);
    });

    it('removes a transient child that exits normally', async () => {
      rt = await tree({});
      const dyn = rt.dynamicSupervisor('/root/dyn');
      const ref = await dyn.startChild(counter('a', [], { restart: 'transient' }));
      ref.send({ kind: 'exit' });
      await eventually(() => expect(dyn.size).to.equal(0));
      expect(ref.alive()).to.equal(false);
    });
  });
});
