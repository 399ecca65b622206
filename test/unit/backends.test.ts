import { expect } from 'chai';
import { pino } from 'pino';
import { backendChild, HealthBoard, type Backend } from '../../src/backends.js';
import { Metrics } from '../../src/metrics.js';
import type { BackendHealth } from '../../src/model.js';
import { Deferred } from '../../src/otp/deferred.js';
import { Runtime, supervisor } from '../../src/otp/index.js';

/** A backend whose lifecycle is recorded, and whose start can be held or made to fail. */
class RecordingBackend implements Backend {
  readonly kind = 'recording';
  readonly log: string[] = [];
  open = false;
  incarnation = 0;
  holdStart: Deferred | null = null;
  failStart: Error | null = null;

  async start(): Promise<void> {
    this.log.push('start');
    await this.holdStart?.promise;
    if (this.failStart) throw this.failStart;
    this.open = true;
    this.incarnation += 1;
  }
  async stop(): Promise<void> {
    this.log.push('stop');
    this.open = false;
  }
  async health(): Promise<BackendHealth> {
    return this.open ? { ok: true, kind: this.kind } : { ok: false, kind: this.kind, detail: 'closed' };
  }
  /** A call that needs the resource open, answering which incarnation served it. */
  async query(tag: string): Promise<string> {
    if (!this.open) throw new Error(`closed while serving ${tag}`);
    return `${tag}@${this.incarnation}`;
  }
}

describe('backends', () => {
  let rt: Runtime | undefined;
  let metrics: Metrics;
  beforeEach(() => (metrics = new Metrics()));
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
    metrics.close();
  });

  const boot = async (backend: RecordingBackend, waitMs = 2000) => {
    const child = backendChild('thing', backend, new HealthBoard(), { metrics, probeMs: 60_000, waitMs });
    rt = await Runtime.start({ id: 'root', start: supervisor({ strategy: 'one_for_one', intensity: 10, period: 60_000 }, [child.spec]) }, { logger: pino({ level: 'silent' }) });
    return child.handle;
  };

  describe('backendChild', () => {
    it('stops and starts the backend again on every restart, not only at boot and shutdown', async () => {
      const b = new RecordingBackend();
      await boot(b);
      await rt!.kill('/root/thing');
      await rt!.kill('/root/thing');
      expect(b.log).to.deep.equal(['start', 'stop', 'start', 'stop', 'start']);
      await rt!.stop();
      rt = undefined;
      expect(b.log.at(-1)).to.equal('stop');
      expect(b.open).to.equal(false);
    });

    it('calls a method replaced on the backend after its first call (the replacement, not the old one)', async () => {
      const b = new RecordingBackend();
      const handle = await boot(b);
      expect(await handle.query('a')).to.equal('a@1');
      b.query = async (tag: string) => `stub:${tag}`;
      expect(await handle.query('b')).to.equal('stub:b');
    });

    it('holds calls made while the worker restarts, and runs them in order on the new incarnation', async () => {
      const b = new RecordingBackend();
      const handle = await boot(b);
      expect(await handle.query('before')).to.equal('before@1');
      b.holdStart = new Deferred();
      const killed = rt!.kill('/root/thing');
      // terminate has closed the old incarnation; the new one is still starting.
      while (b.log.length < 3) await new Promise((r) => setTimeout(r, 1));
      expect(b.open).to.equal(false);
      const held = [handle.query('a'), handle.query('b')];
      b.holdStart.resolve();
      b.holdStart = null;
      await killed;
      expect(await Promise.all(held)).to.deep.equal(['a@2', 'b@2']);
    });

    it('fails a held call with unavailable once waitMs has passed', async () => {
      const b = new RecordingBackend();
      const handle = await boot(b, 50);
      b.holdStart = new Deferred();
      const killed = rt!.kill('/root/thing');
      while (b.log.length < 3) await new Promise((r) => setTimeout(r, 1));
      const err = await handle.query('late').catch((e: unknown) => e);
      expect(err).to.include({ name: 'ObserverioError', code: 'unavailable' });
      expect((err as Error).message).to.equal('the thing backend is restarting; try again');
      b.holdStart.resolve();
      await killed;
    });

    it('answers health at once while restarting (readiness must not wait)', async () => {
      const b = new RecordingBackend();
      const handle = await boot(b);
      b.holdStart = new Deferred();
      const killed = rt!.kill('/root/thing');
      while (b.log.length < 3) await new Promise((r) => setTimeout(r, 1));
      expect(await handle.health()).to.deep.equal({ ok: false, kind: 'recording', detail: 'closed' });
      b.holdStart.resolve();
      await killed;
    });

    it('after shutdown, passes calls to the stopped backend, which refuses them', async () => {
      const b = new RecordingBackend();
      const handle = await boot(b);
      await rt!.stop();
      rt = undefined;
      const err = await handle.query('after').catch((e: unknown) => e);
      expect((err as Error).message).to.equal('closed while serving after');
    });

    it('fails the first start, but runs degraded when a restart cannot start the backend', async () => {
      const failing = new RecordingBackend();
      failing.failStart = new Error('no route to backend');
      const err = await boot(failing).catch((e: unknown) => e);
      expect((err as Error).message).to.match(/no route to backend/);
      rt = undefined;

      const b = new RecordingBackend();
      await boot(b);
      b.failStart = new Error('backend went away');
      const cell = await rt!.kill('/root/thing');
      expect(cell).to.include({ status: 'running', restarts: 1 });
      expect(rt!.tree().children![0]!.info).to.include({ ok: false, detail: 'closed', incarnations: 2 });
      // Once the backend is reachable again, the next restart opens it.
      b.failStart = null;
      await rt!.kill('/root/thing');
      expect(rt!.tree().children![0]!.info).to.include({ ok: true, incarnations: 3 });
    });
  });
});
