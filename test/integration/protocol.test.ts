/**
 * The wire protocol of DESIGN.md §2 over real TCP against a real daemon (embedded backends; the
 * Redis/Meilisearch path is covered by original.test.ts): every command, framing, every bad input,
 * limits, concurrency, and crash isolation between connections.
 */
import { expect } from 'chai';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';

describe('TCP protocol', () => {
  let daemon: Daemon;
  let apiKey: string;
  const clients: LineClient[] = [];
  const open = async (): Promise<LineClient> => {
    const c = await LineClient.open(daemon.tcpPort);
    clients.push(c);
    return c;
  };
  const verified = async (key = apiKey, device?: string): Promise<LineClient> => {
    const c = await open();
    c.line(device ? `v:${key}:${device}` : `v:${key}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  const vars = (key: string) => daemon.ctx.store.getVars(key);

  before(async () => {
    daemon = await startDaemon({
      crashPrefix: '!crash',
      overrides: { tcp: { maxLineBytes: 4096, maxErrors: 20, errorWindowMs: 10_000, restartIntensity: 3, restartPeriodMs: 60_000, verifyTimeoutMs: 400 } },
    });
    apiKey = await daemon.register();
  });
  after(() => daemon.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  describe('v:', () => {
    it('answers OK for a registered key', async () => {
      await verified();
    });
    it('accepts a device id (extension)', async () => {
      await verified(apiKey, 'pixel-7.test_1');
      await eventually(() => expect(daemon.ctx.deviceConns.lookup(apiKey).some((e) => e.value.deviceId === 'pixel-7.test_1')).to.equal(true));
    });
    it('answers e:unknown_api_key for a well-formed but unregistered key, and stays up', async () => {
      const c = await open();
      c.line('v:AAAAAAAAAAAA');
      expect(await c.next()).to.match(/^e:unknown_api_key:/);
      c.line(`v:${apiKey}`);
      expect(await c.next()).to.equal('OK');
    });
    it('answers e:bad_api_key for a key of the wrong length or alphabet', async () => {
      const c = await open();
      for (const bad of ['v:short', 'v:ABCDEFGHIJKLM', 'v:ABCDEFGHIJ-K', 'v:']) c.line(bad);
      const lines = await c.waitLines(4);
      expect(lines.every((l) => l.startsWith('e:bad_api_key:'))).to.equal(true, lines.join('\n'));
    });
    it('answers e:bad_device_id for a hostile device id', async () => {
      const c = await open();
      c.line(`v:${apiKey}:../../etc`);
      expect(await c.next()).to.match(/^e:bad_device_id:/);
    });
    it('refuses to switch a verified connection to another key', async () => {
      const other = await daemon.register();
      const c = await verified();
      c.line(`v:${other}`);
      expect(await c.next()).to.match(/^e:key_mismatch:/);
    });
    it('closes a connection that does not verify in time', async () => {
      const c = await open();
      expect(await c.next(2000)).to.match(/^e:verify_timeout:/);
      await c.waitClosed();
    });
  });

  describe('i:', () => {
    it('stores variables in first-seen order, values as strings', async () => {
      const key = await daemon.register();
      const c = await verified(key);
      c.line(`i:${key}:${b64([{ name: 'speed', type: 'integer', value: '-1' }, { name: 'god', type: 'boolean', value: true }, { name: 'gravity', type: 'float', value: 9.81 }])}`);
      c.line(`i:${key}:${b64([{ name: 'speed', type: 'integer', value: '5' }])}`);
      await eventually(async () =>
        expect(await vars(key)).to.deep.equal([
          { name: 'speed', type: 'integer', value: '5' },
          { name: 'god', type: 'boolean', value: 'true' },
          { name: 'gravity', type: 'float', value: '9.81' },
        ]),
      );
    });
    it('answers e:not_verified before v:', async () => {
      const c = await open();
      c.line(`i:${apiKey}:${b64([{ name: 'a', type: 'string', value: 'x' }])}`);
      expect(await c.next()).to.match(/^e:not_verified:/);
    });
    it('answers e:key_mismatch for another key than the verified one', async () => {
      const other = await daemon.register();
      const c = await verified();
      c.line(`i:${other}:${b64([{ name: 'a', type: 'string', value: 'x' }])}`);
      expect(await c.next()).to.match(/^e:key_mismatch:/);
      expect(await vars(other)).to.deep.equal([]);
    });
    it('answers e:bad_base64, e:bad_json and e:bad_shape', async () => {
      const c = await verified();
      c.line(`i:${apiKey}:not*base64!`);
      c.line(`i:${apiKey}:${Buffer.from('{nope').toString('base64')}`);
      c.line(`i:${apiKey}:${b64({ name: 'a' })}`);
      c.line(`i:${apiKey}:${b64([{ name: '', type: 'string', value: 'x' }])}`);
      c.line(`i:${apiKey}:${b64([{ name: 'a', type: 'string', value: { nested: 1 } }])}`);
      const lines = (await c.waitLines(6)).slice(1);
      expect(lines.map((l) => l.split(':')[1])).to.deep.equal(['bad_base64', 'bad_json', 'bad_shape', 'bad_shape', 'bad_shape']);
    });
  });

  describe('l:', () => {
    it('indexes logs with the key, device, level and receive time', async () => {
      const key = await daemon.register();
      const c = await verified(key, 'dev1');
      c.line(`l:${key}:${b64([{ message: 'boss spawned', level: 'warn', timestamp: 42, zone: 'cave' }, { message: 'player died' }])}`);
      const r = await eventually(async () => {
        const r = await daemon.ctx.logIndex.search({ apiKey: key });
        expect(r.hits).to.have.length(2);
        return r;
      });
      const boss = r.hits.find((h) => h.message === 'boss spawned')!;
      expect(boss).to.include({ apiKey: key, deviceId: 'dev1', level: 'warn', timestamp: 42 });
      expect(boss.fields).to.deep.equal({ zone: 'cave' });
      expect(boss.receivedAt).to.be.closeTo(Date.now(), 10_000);
      expect(r.hits.find((h) => h.message === 'player died')).to.include({ level: 'info', timestamp: null });
    });
    it('answers e:bad_shape for logs without a message', async () => {
      const c = await verified();
      c.line(`l:${apiKey}:${b64([{ msg: 'wrong field' }])}`);
      expect((await c.waitLines(2))[1]).to.match(/^e:bad_shape:logs\[0\]\.message/);
    });
  });

  describe('framing', () => {
    it('joins a line split across chunks, byte by byte', async () => {
      const c = await open();
      for (const ch of `v:${apiKey}\n`) {
        c.send(ch);
        await new Promise((r) => setImmediate(r));
      }
      expect(await c.next()).to.equal('OK');
    });
    it('handles many lines in one chunk, \\r\\n endings and blank lines, in order', async () => {
      const key = await daemon.register();
      const c = await open();
      const lines = [`v:${key}`, '', ...Array.from({ length: 200 }, (_, i) => `i:${key}:${b64([{ name: `v${i}`, type: 'integer', value: String(i) }])}`)];
      c.send(`  ${lines.join('\r\n')}\r\n`);
      expect(await c.next()).to.equal('OK');
      await eventually(async () => expect(await vars(key)).to.have.length(200));
      expect((await vars(key)).map((v) => v.name).slice(0, 3)).to.deep.equal(['v0', 'v1', 'v2']);
    });
    it('answers e:unknown_command and stays up', async () => {
      const c = await open();
      c.line('x:hello');
      c.line('HELLO');
      c.line(`v:${apiKey}`);
      const lines = await c.waitLines(3);
      expect(lines[0]).to.match(/^e:unknown_command:/);
      expect(lines[1]).to.match(/^e:unknown_command:/);
      expect(lines[2]).to.equal('OK');
    });
    it('answers e:line_too_long for a line over the limit, skips it and carries on', async () => {
      const c = await open();
      c.send(`i:${apiKey}:${'A'.repeat(10_000)}\n`);
      c.line(`v:${apiKey}`);
      const lines = await c.waitLines(2);
      expect(lines[0]).to.match(/^e:line_too_long:/);
      expect(lines[1]).to.equal('OK');
    });
    it('closes a connection whose line never ends', async () => {
      const c = await open();
      const chunk = 'A'.repeat(4096);
      for (let i = 0; i < 20 && !c.closed; i++) {
        c.send(chunk);
        await new Promise((r) => setTimeout(r, 5));
      }
      await c.waitClosed();
    });
    it('survives binary garbage with a clear error', async () => {
      const c = await open();
      c.send(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0xc3, 0x28, 0x0a]));
      c.line(`v:${apiKey}`);
      const lines = await c.waitLines(3);
      expect(lines[0]).to.match(/^e:unknown_command:/);
      expect(lines[1]).to.match(/^e:unknown_command:/);
      expect(lines[2]).to.equal('OK');
    });
    it('closes a connection that floods bad lines, and only that one', async () => {
      const good = await verified();
      const bad = await open();
      bad.send('garbage\n'.repeat(100));
      await bad.waitClosed();
      expect(bad.lines.at(-1)).to.match(/^e:too_many_errors:/);
      good.line(`v:${apiKey}`);
      expect(await good.next()).to.equal('OK');
    });
  });

  describe('concurrency and isolation', () => {
    it('serves hundreds of concurrent connections', async () => {
      const key = await daemon.register();
      const n = 300;
      const conns = await Promise.all(Array.from({ length: n }, () => open()));
      conns.forEach((c, i) => c.send(`v:${key}:d${i}\ni:${key}:${b64([{ name: `c${i}`, type: 'integer', value: String(i) }])}\n`));
      await Promise.all(conns.map(async (c) => expect(await c.next(10_000)).to.equal('OK')));
      await eventually(async () => expect(await vars(key)).to.have.length(n), { timeoutMs: 10_000 });
      expect(daemon.ctx.deviceConns.countKey(key)).to.equal(n);
    });

    it('restarts a crashed connection actor on the same socket, still verified', async () => {
      const key = await daemon.register();
      const c = await verified(key);
      const before = daemon.runtime.tree({ expand: '/observerio/tcp/conns', limit: 1000 }).childCount;
      c.line('!crash please');
      c.line(`i:${key}:${b64([{ name: 'after', type: 'string', value: 'crash' }])}`);
      await eventually(async () => expect(await vars(key)).to.deep.equal([{ name: 'after', type: 'string', value: 'crash' }]));
      expect(c.closed).to.equal(false);
      const conns = daemon.runtime.tree({ expand: '/observerio/tcp/conns', limit: 1000 });
      expect(conns.childCount).to.equal(before);
      expect(conns.children!.some((n) => n.restarts === 1 && (n.lastCrash?.reason ?? '').includes('fault injected'))).to.equal(true);
    });

    it('closes only the offender when its crashes exceed the connection restart intensity', async () => {
      const key = await daemon.register();
      const good = await verified(key, 'good');
      const bad = await verified(key, 'bad');
      bad.send('!crash\n'.repeat(10));
      await bad.waitClosed();
      good.line(`i:${key}:${b64([{ name: 'alive', type: 'boolean', value: 'true' }])}`);
      await eventually(async () => expect(await vars(key)).to.deep.equal([{ name: 'alive', type: 'boolean', value: 'true' }]));
      expect(daemon.runtime.find('/observerio/tcp/conns')!.restarts).to.equal(0);
      expect(daemon.runtime.root.status).to.equal('running');
      await eventually(() => expect(daemon.ctx.deviceConns.lookup(key).map((e) => e.value.deviceId)).to.deep.equal(['good']));
    });
  });

  describe('idle timeout (tcp.idleTimeoutMs, one sweep for every connection)', () => {
    let idle: Daemon;
    const IDLE_MS = 300;
    before(async () => {
      idle = await startDaemon({ overrides: { tcp: { idleTimeoutMs: IDLE_MS } } });
    });
    after(() => idle.stop());

    it('closes a verified connection silent for the timeout, without an error line, and drops its device', async () => {
      const key = await idle.register();
      const c = await LineClient.open(idle.tcpPort);
      clients.push(c);
      c.line(`v:${key}:quiet`);
      expect(await c.next()).to.equal('OK');
      const t0 = Date.now();
      await c.waitClosed(5000);
      expect(Date.now() - t0).to.be.at.least(IDLE_MS - 20);
      expect(c.lines).to.deep.equal(['OK']);
      await eventually(() => expect(idle.ctx.deviceConns.lookup(key)).to.deep.equal([]));
    });

    it('keeps a connection that sends more often than the timeout, and closes it once it stops', async () => {
      const key = await idle.register();
      const c = await LineClient.open(idle.tcpPort);
      clients.push(c);
      c.line(`v:${key}:chatty`);
      expect(await c.next()).to.equal('OK');
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, IDLE_MS / 3));
        c.line(`l:${key}:${b64([{ message: `tick ${i}` }])}`);
      }
      expect(c.closed).to.equal(false);
      const last = Date.now();
      await c.waitClosed(5000);
      expect(Date.now() - last).to.be.at.least(IDLE_MS - 20);
    });
  });
});
