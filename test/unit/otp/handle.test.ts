import { expect } from 'chai';
import { ChildNotRunning, ChildSpecError, dynamicSupervisor, dynamicSupervisorHandle, workerHandle, type Runtime } from '../../../src/otp/index.js';
import { counter, get, startTree, sup, type Msg } from './helpers.js';

describe('otp/handle', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  describe('workerHandle', () => {
    it('throws ChildNotRunning before the tree starts and after it stops', async () => {
      const h = workerHandle<Msg>();
      expect(() => h.ref()).to.throw(ChildNotRunning, /not started/);
      rt = await startTree(sup('root', { strategy: 'one_for_one' }, [{ ...counter('w', []), handle: h }]));
      expect(h.ref().path).to.equal('/root/w');
      await rt.stop();
      rt = undefined;
      expect(() => h.ref()).to.throw(ChildNotRunning, /\/root\/w is stopped/);
    });

    it('keeps answering the running incarnation after an in-place restart', async () => {
      const h = workerHandle<Msg>();
      rt = await startTree(sup('root', { strategy: 'one_for_one', intensity: 5 }, [{ ...counter('w', []), handle: h }]));
      const before = h.cell();
      await rt.kill('/root/w');
      expect(h.cell()).to.equal(before);
      h.ref().send({ kind: 'add', n: 3 });
      expect(await get(rt, '/root/w')).to.equal(3);
    });

    it('follows the fresh cell built when the parent supervisor itself restarts', async () => {
      const h = workerHandle<Msg>();
      const log: string[] = [];
      rt = await startTree(
        sup('root', { strategy: 'one_for_one', intensity: 5 }, [sup('mid', { strategy: 'one_for_all', intensity: 0 }, [{ ...counter('w', log), handle: h }])]),
      );
      const first = h.cell();
      // intensity 0: the first crash makes `mid` fail, and root restarts it with new cells.
      await rt.kill('/root/mid/w');
      expect(rt.find('/root/mid')!.restarts).to.equal(1);
      expect(h.cell()).to.not.equal(first);
      expect(first.status).to.equal('stopped');
      expect(h.cell()).to.equal(rt.find('/root/mid/w'));
      h.ref().send({ kind: 'add', n: 2 });
      expect(await get(rt, '/root/mid/w')).to.equal(2);
    });
  });

  describe('dynamicSupervisorHandle', () => {
    it('starts children through the handle, and follows the supervisor across its restart', async () => {
      const h = dynamicSupervisorHandle();
      rt = await startTree(sup('root', { strategy: 'one_for_one', intensity: 5 }, [{ id: 'dyn', start: dynamicSupervisor({}), handle: h }]));
      await h.cell().startChild(counter('a', []));
      expect(h.cell().size).to.equal(1);
      await rt.kill('/root/dyn');
      // A restarted dynamic supervisor starts empty, and the same handle still reaches it.
      expect(h.cell().size).to.equal(0);
      await h.cell().startChild(counter('b', []));
      expect(rt.find('/root/dyn/b')).to.not.equal(undefined);
    });

    it('is refused, naming the child, on a spec of another kind', async () => {
      const err = await startTree(sup('root', { strategy: 'one_for_one' }, [{ ...counter('w', []), handle: dynamicSupervisorHandle() }])).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ChildSpecError);
      expect((err as Error).message).to.equal('/root: child "w": handle follows a dynamic child, not a worker');
    });
  });
});
