/**
 * What a worker keeps once its messages are handled: nothing of them. A node holds one worker per
 * connection, most of them idle after their first message, so whatever one keeps is kept thousands
 * of times over.
 */
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dynamicSupervisor, worker, type ActorRef, type Runtime } from '../../../src/otp/index.js';
import { eventually } from '../../helpers/eventually.js';
import { startTree, sup } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type Msg = { kind: 'chunk'; data: Buffer };

describe('otp/worker memory', () => {
  let rt: Runtime;
  afterEach(() => rt.stop());

  it('an idle worker keeps neither its last message nor the timer handle of the turn that handled it', async () => {
    rt = await startTree(sup('root', { strategy: 'one_for_one' }, [{ id: 'dyn', start: dynamicSupervisor({}) }]));
    let handled = 0;
    const ref: ActorRef<Msg> = await rt.dynamicSupervisor('/root/dyn').startChild<Msg>({
      id: 'w',
      start: worker<null, Msg>({ init: () => null, handle: () => void (handled += 1) }),
    });
    // The turn nact schedules for the message: a handle that ran still links the handles queued after
    // it, so one kept per idle actor kept a chain of them. In a function of its own, so that this
    // test's frame holds neither.
    const sendOne = (): { message: WeakRef<Msg>; turn: WeakRef<NodeJS.Immediate> | null } => {
      let turn: WeakRef<NodeJS.Immediate> | null = null;
      const real = globalThis.setImmediate;
      globalThis.setImmediate = ((...args: Parameters<typeof setImmediate>) => {
        const handle = real(...args);
        turn ??= new WeakRef(handle);
        return handle;
      }) as typeof setImmediate;
      try {
        const msg: Msg = { kind: 'chunk', data: Buffer.alloc(64) };
        ref.send(msg);
        return { message: new WeakRef(msg), turn };
      } finally {
        globalThis.setImmediate = real;
      }
    };
    const { message, turn } = sendOne();
    expect(turn).to.not.equal(null);
    await eventually(() => expect(handled).to.equal(1));
    await new Promise((r) => setImmediate(r));
    await eventually(() => {
      gc();
      expect(message.deref(), 'the message').to.equal(undefined);
      expect(turn?.deref(), 'the turn').to.equal(undefined);
    });
    expect(ref.alive()).to.equal(true);
  });
});
