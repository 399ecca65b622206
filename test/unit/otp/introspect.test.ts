import { expect } from 'chai';
import { dynamicSupervisor, type Runtime } from '../../../src/otp/index.js';
import { counter, get, send, startTree, sup } from './helpers.js';

describe('otp/introspect', () => {
  let rt: Runtime;
  afterEach(() => rt.stop());

  describe('tree', () => {
    it('describes every node: kind, strategy, restart type, status, restarts, crash, start time, mailbox, info', async () => {
      rt = await startTree(sup('root', { strategy: 'rest_for_one', intensity: 4, period: 1000 }, [counter('a', []), { id: 'dyn', start: dynamicSupervisor({ maxChildren: 10 }) }]));
      send(rt, '/root/a', { kind: 'add', n: 3 });
      expect(await get(rt, '/root/a')).to.equal(3);
      await rt.kill('/root/a', 'test kill');
      send(rt, '/root/a', { kind: 'add', n: 2 });
      await new Promise((r) => setTimeout(r, 10));
      const t = rt.tree();
      expect(t).to.include({ name: 'root', path: '/root', kind: 'supervisor', strategy: 'rest_for_one', intensity: 4, period: 1000, status: 'running', childCount: 2 });
      const [a, dyn] = t.children!;
      expect(a).to.include({ name: 'a', path: '/root/a', kind: 'worker', restart: 'permanent', status: 'running', restarts: 1, mailbox: 0 });
      expect(a!.lastCrash?.reason).to.equal('Killed: test kill');
      expect(a!.startedAt).to.be.closeTo(Date.now(), 5000);
      expect(a!.info).to.deep.equal({ n: 2 });
      expect(dyn).to.include({ strategy: 'simple_one_for_one', maxChildren: 10, childCount: 0 });
      expect(JSON.parse(JSON.stringify(t))).to.deep.equal(t);
    });

    it('pages the children of a large dynamic supervisor', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [{ id: 'dyn', start: dynamicSupervisor({}) }]));
      const dyn = rt.dynamicSupervisor('/root/dyn');
      for (let i = 0; i < 120; i++) await dyn.startChild(counter(`c-${i}`, []));
      const t = rt.tree({ limit: 10 });
      const d = t.children![0]!;
      expect(d.childCount).to.equal(120);
      expect(d.children).to.have.length(10);
      expect(d.truncated).to.equal(true);
      expect(d.counts).to.deep.equal({ running: 120 });
      const page = rt.tree({ expand: '/root/dyn', offset: 115, limit: 10 });
      expect(page.path).to.equal('/root/dyn');
      expect(page.children!.map((c) => c.name)).to.deep.equal(['c-115', 'c-116', 'c-117', 'c-118', 'c-119']);
    });

    it('counts queued messages as the mailbox length', async () => {
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [counter('a', [])]));
      send(rt, '/root/a', { kind: 'slow', ms: 50 });
      for (let i = 0; i < 5; i++) send(rt, '/root/a', { kind: 'add', n: 1 });
      await new Promise((r) => setTimeout(r, 10));
      expect(rt.tree().children![0]!.mailbox).to.equal(5);
    });
  });
});
