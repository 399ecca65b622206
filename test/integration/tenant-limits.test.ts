/**
 * Per-tenant limits (issue 10) over real TCP against a real daemon: each limit refuses with its
 * `e:` code, what the same line carries within the limits still lands, other tenants are unaffected,
 * and /metrics counts every refusal per key. The issue's two reproductions are the first tests of
 * their describes: one connection creating variables without end, one key taking every slot.
 */
import { expect } from 'chai';
import { metric, scrape } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

const vars = (names: string[], value = 'v'): string => b64(names.map((name) => ({ name, type: 'string', value })));
const range = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const refusals = async (daemon: Daemon, limit: string, apiKey: string): Promise<number> => metric(await scrape(daemon), 'observerio_limit_refusals_total', { limit, apiKey }) ?? 0;

describe('per-tenant limits', () => {
  const clients: LineClient[] = [];
  const open = async (daemon: Daemon, localAddress?: string): Promise<LineClient> => {
    const c = await LineClient.open(daemon.tcpPort, '127.0.0.1', localAddress);
    clients.push(c);
    return c;
  };
  const verified = async (daemon: Daemon, key: string, localAddress?: string): Promise<LineClient> => {
    const c = await open(daemon, localAddress);
    c.line(`v:${key}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  describe('variables, with the default limits', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon();
    });
    after(() => daemon.stop());

    it('stops one connection creating variables at maxVarsPerKey (2,000): the reproduction', async () => {
      const key = await daemon.register();
      const c = await verified(daemon, key);
      // 20,000 new names in 10 lines; the unlimited daemon stored every one of them.
      for (let l = 0; l < 10; l++) c.line(`i:${key}:${vars(range(2000, `flood${l}_`))}`);
      await eventually(async () => expect(await refusals(daemon, 'vars_per_key', key)).to.equal(18_000), { timeoutMs: 15_000 });
      const stored = await daemon.ctx.store.getVars(key);
      expect(stored).to.have.length(2000);
      expect(stored.every((v) => v.name.startsWith('flood0_'))).to.equal(true);
      // One e: line for the nine refused lines (at most one a second per connection), connection up.
      expect(c.lines.slice(1)).to.have.length(1);
      expect(c.lines[1]).to.match(/^e:too_many_vars:2000 new variables refused \("flood1_0", "flood1_1", "flood1_2"\): the key has 2000 of 2000$/);
      expect(c.closed).to.equal(false);
    });

    it('still writes the updates of a line whose new names are refused, and never refuses an update', async () => {
      const key = await daemon.register();
      const c = await verified(daemon, key);
      c.line(`i:${key}:${vars(range(2000, 'x'))}`);
      await eventually(async () => expect(await daemon.ctx.store.getVars(key)).to.have.length(2000));
      c.line(`i:${key}:${b64([
        { name: 'x5', type: 'string', value: 'updated' },
        { name: 'brand-new', type: 'string', value: 'refused' },
        { name: 'x1999', type: 'string', value: 'updated too' },
      ])}`);
      expect(await c.next()).to.match(/^e:too_many_vars:1 new variable refused \("brand-new"\)/);
      await eventually(async () => {
        const byName = new Map((await daemon.ctx.store.getVars(key)).map((v) => [v.name, v.value]));
        expect(byName.get('x5')).to.equal('updated');
        expect(byName.get('x1999')).to.equal('updated too');
        expect(byName.has('brand-new')).to.equal(false);
        expect(byName.size).to.equal(2000);
      });
      // A device reconnecting re-sends every variable: all updates, none refused.
      const again = await verified(daemon, key);
      again.line(`i:${key}:${vars(range(2000, 'x'), 'resent')}`);
      await eventually(async () => expect((await daemon.ctx.store.getVars(key)).every((v) => v.value === 'resent')).to.equal(true));
      expect(again.lines).to.deep.equal(['OK']);
      expect(await refusals(daemon, 'vars_per_key', key)).to.equal(1);
    });

    it("counts the variables already stored for the key, not only this connection's", async () => {
      const key = await daemon.register();
      await daemon.ctx.store.setVars(key, range(1999, 'pre').map((name) => ({ name, type: 'string', value: '1' })));
      const c = await verified(daemon, key);
      c.line(`i:${key}:${vars(['one', 'two', 'three'])}`);
      expect(await c.next()).to.match(/^e:too_many_vars:2 new variables refused \("two", "three"\): the key has 2000 of 2000$/);
      await eventually(async () => expect((await daemon.ctx.store.getVars(key)).at(-1)?.name).to.equal('one'));
      expect(await daemon.ctx.store.getVars(key)).to.have.length(2000);
    });

    it('keeps another tenant unaffected by a key at its limit', async () => {
      const full = await daemon.register();
      const other = await daemon.register();
      const a = await verified(daemon, full);
      a.line(`i:${full}:${vars(range(2001, 'f'))}`);
      expect(await a.next()).to.match(/^e:too_many_vars:/);
      const b = await verified(daemon, other);
      b.line(`i:${other}:${vars(range(500, 'o'))}`);
      await eventually(async () => expect(await daemon.ctx.store.getVars(other)).to.have.length(500));
      expect(b.lines).to.deep.equal(['OK']);
    });

    it('answers a name over 128 characters e:bad_shape, as before: the limits never see it', async () => {
      const key = await daemon.register();
      const c = await verified(daemon, key);
      c.line(`i:${key}:${vars(['n'.repeat(129)])}`);
      expect(await c.next()).to.match(/^e:bad_shape:vars\[0\]\.name/);
      expect(await refusals(daemon, 'vars_per_key', key)).to.equal(0);
    });
  });

  describe('new variables per minute', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon({ overrides: { limits: { newVarsBurst: 5, newVarsPerMinute: 1 } } });
    });
    after(() => daemon.stop());

    it('takes newVarsBurst new names, refuses the rest with e:too_many_new_vars, and keeps the updates', async () => {
      const key = await daemon.register();
      const c = await verified(daemon, key);
      c.line(`i:${key}:${vars(range(5, 'a'))}`);
      c.line(`i:${key}:${vars(['a0', 'b0', 'b1', 'a4', 'b2'], 'second')}`);
      expect(await c.next()).to.equal('e:too_many_new_vars:3 new variables refused ("b0", "b1", "b2"): over 1 new variables per minute');
      await eventually(async () => {
        const stored = await daemon.ctx.store.getVars(key);
        expect(stored.map((v) => `${v.name}=${v.value}`)).to.deep.equal(['a0=second', 'a1=v', 'a2=v', 'a3=v', 'a4=second']);
      });
      expect(await refusals(daemon, 'new_vars_per_minute', key)).to.equal(3);
    });
  });

  describe('connections', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon({ overrides: { tcp: { maxConnections: 40 }, limits: { maxConnectionsPerKey: 20, maxConnectionsPerAddress: 30 } } });
    });
    after(() => daemon.stop());

    it('lets another tenant connect while one key holds its maxConnectionsPerKey: the reproduction', async () => {
      const greedy = await daemon.register();
      const other = await daemon.register();
      // From many addresses, so that only the per-key limit is in play.
      const answers: string[] = [];
      for (let i = 0; i < 40; i++) {
        const c = await open(daemon, `127.0.1.${i + 1}`);
        c.line(`v:${greedy}`);
        answers.push(await c.next());
        if (answers[i] !== 'OK') await c.waitClosed();
      }
      expect(answers.filter((a) => a === 'OK')).to.have.length(20);
      expect(answers.slice(20)).to.deep.equal(Array(20).fill('e:too_many_connections:connection limit of 20 per API key reached; retry later'));
      // The unlimited daemon answered this one e:server_busy: the greedy key held all 40 slots.
      await eventually(() => expect(daemon.runtime.dynamicSupervisor('/observerio/tcp/conns').size).to.equal(20));
      await verified(daemon, other, '127.0.2.1');
      expect(await refusals(daemon, 'connections_per_key', greedy)).to.equal(20);
      expect(await refusals(daemon, 'connections_per_key', other)).to.equal(0);
    });

    it('gives a key its slot back when one of its connections closes', async () => {
      const key = await daemon.register();
      const held = [];
      for (let i = 0; i < 20; i++) held.push(await verified(daemon, key, `127.0.3.${i + 1}`));
      const refused = await open(daemon, '127.0.3.100');
      refused.line(`v:${key}`);
      expect(await refused.next()).to.match(/^e:too_many_connections:/);
      await refused.waitClosed();
      held[0]?.close();
      await eventually(async () => {
        const c = await open(daemon, '127.0.3.101');
        c.line(`v:${key}`);
        expect(await c.next()).to.equal('OK');
      });
    });

    it('refuses the connection past maxConnectionsPerAddress before any line, and not other addresses', async () => {
      const key = await daemon.register();
      const before = await refusals(daemon, 'connections_per_address', '_none');
      const held: LineClient[] = [];
      for (let i = 0; i < 30; i++) held.push(await open(daemon, '127.0.4.1'));
      // Unverified sockets hold address slots too: that is what a flood of idle sockets looks like.
      const over = await open(daemon, '127.0.4.1');
      await over.waitClosed();
      expect(over.lines).to.deep.equal(['e:too_many_connections:connection limit of 30 per address reached; retry later']);
      await verified(daemon, key, '127.0.4.2');
      expect(await refusals(daemon, 'connections_per_address', '_none')).to.equal(before + 1);
      (held[0] as LineClient).close();
      await eventually(async () => {
        const c = await open(daemon, '127.0.4.1');
        c.line(`v:${key}`);
        expect(await c.next()).to.equal('OK');
      });
    });
  });

  describe('logs', () => {
    let daemon: Daemon;
    before(async () => {
      // One entry a second after a burst of 100: nothing refills noticeably while a test runs.
      daemon = await startDaemon({ overrides: { limits: { logsPerSecond: 1, logsBurst: 100 } } });
    });
    after(() => daemon.stop());
    const logs = (n: number, tag: string): string => b64(Array.from({ length: n }, (_, i) => ({ message: `${tag} ${i}` })));

    it('passes logsBurst entries, drops the rest with e:rate_limited, counts them, and leaves another key alone', async () => {
      const noisy = await daemon.register();
      const quiet = await daemon.register();
      const received0 = metric(await scrape(daemon), 'observerio_logs_received_total') ?? 0;
      const c = await verified(daemon, noisy);
      const t0 = Date.now();
      c.line(`l:${noisy}:${logs(150, 'noisy')}`);
      expect(await c.next()).to.equal('e:rate_limited:50 of 150 logs dropped: the key is over 1 logs/s');
      // More lines within the second: dropped and counted, not answered again.
      for (let i = 0; i < 20; i++) c.line(`l:${noisy}:${logs(10, `more${i}`)}`);
      c.line(`l:${noisy}:W10=`);
      const q = await verified(daemon, quiet);
      q.line(`l:${quiet}:${logs(60, 'quiet')}`);
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_logs_received_total')).to.be.at.least(received0 + 100 + 60));
      // The 200 entries after the first line: refused but for what the seconds of the test refill.
      const dropped = await eventually(async () => {
        const n = await refusals(daemon, 'logs_per_second', noisy);
        expect(n).to.be.within(50 + 200 - Math.ceil((Date.now() - t0) / 1000), 50 + 200);
        return n;
      });
      expect(metric(await scrape(daemon), 'observerio_logs_received_total')).to.equal(received0 + 100 + 60 + (250 - dropped));
      expect(await refusals(daemon, 'logs_per_second', quiet)).to.equal(0);
      expect(q.lines).to.deep.equal(['OK']);
      // At most one e:rate_limited a second on this connection, however many lines were dropped.
      const seconds = Math.ceil((Date.now() - t0) / 1000);
      expect(c.lines.filter((l) => l.startsWith('e:')).length).to.be.within(1, seconds);
    });

    it('labels at most metricsMaxKeys keys on /metrics and counts the others under _other', async () => {
      const own = await startDaemon({ overrides: { limits: { logsPerSecond: 1, logsBurst: 100, metricsMaxKeys: 2 } } });
      try {
        const keys: string[] = [];
        for (let i = 0; i < 5; i++) keys.push(await own.register());
        for (const [i, key] of keys.entries()) {
          const c = await verified(own, key);
          c.line(`l:${key}:${logs(100 + i + 1, key)}`);
          expect(await c.next()).to.match(new RegExp(`^e:rate_limited:${i + 1} of ${101 + i} `));
        }
        const text = await scrape(own);
        // The first two keys to hit a limit have their series; the next three count together.
        expect(metric(text, 'observerio_limit_refusals_total', { limit: 'logs_per_second', apiKey: keys[0] as string })).to.equal(1);
        expect(metric(text, 'observerio_limit_refusals_total', { limit: 'logs_per_second', apiKey: keys[1] as string })).to.equal(2);
        for (const key of keys.slice(2)) expect(metric(text, 'observerio_limit_refusals_total', { apiKey: key })).to.equal(undefined);
        expect(metric(text, 'observerio_limit_refusals_total', { limit: 'logs_per_second', apiKey: '_other' })).to.equal(3 + 4 + 5);
        expect(text.split('\n').filter((l) => l.startsWith('observerio_limit_refusals_total{'))).to.have.length(3);
      } finally {
        for (const c of clients.splice(0)) c.close();
        await own.stop();
      }
    });
  });

  describe('with Redis, across two nodes', () => {
    let a: Daemon;
    let b: Daemon;
    before(async () => {
      const overrides = { limits: { maxVarsPerKey: 10, varsRefreshMs: 1 } };
      a = await startDaemon({ redis: true, overrides });
      b = await startDaemon({ redis: true, overrides });
    });
    after(async () => {
      await a.stop();
      await b.stop();
    });

    it("counts the other node's variables once its copy is older than varsRefreshMs", async () => {
      const key = await a.register();
      const onB = await verified(b, key);
      const onA = await verified(a, key);
      onA.line(`i:${key}:${vars(range(8, 'a'))}`);
      await eventually(async () => expect(await b.ctx.store.getVars(key)).to.have.length(8));
      // b loaded the key's names (none) at its v:; its copy is stale now, so it reads them again.
      onB.line(`i:${key}:${vars(['a1', 'b1', 'b2', 'b3'])}`);
      expect(await onB.next()).to.match(/^e:too_many_vars:1 new variable refused \("b3"\): the key has 10 of 10$/);
      await eventually(async () => expect((await a.ctx.store.getVars(key)).map((v) => v.name)).to.deep.equal([...range(8, 'a'), 'b1', 'b2']));
      expect(await refusals(b, 'vars_per_key', key)).to.equal(1);
    });
  });
});
