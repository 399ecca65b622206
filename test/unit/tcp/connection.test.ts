/**
 * The connection actor over an in-memory transport, under a real dynamic supervisor: what a crash
 * keeps (transport, verification, the lines after the crashing one), the error and crash budgets,
 * the verify race and timeouts, line limits and a reader too slow for its writes.
 */
import { expect } from 'chai';
import type { Counter } from 'prom-client';
import type { LimitsConfig, TcpConfig } from '../../../src/config.js';
import { TenantLimits } from '../../../src/limits/tenant-limits.js';
import type { DeviceInfo } from '../../../src/gateway/gateway.js';
import { Metrics } from '../../../src/metrics.js';
import type { Var } from '../../../src/model.js';
import { dynamicSupervisor, supervisor, type ActorRef, type Runtime } from '../../../src/otp/index.js';
import { Connection, connectionChildSpec, newConnectionId, type ConnectionGateway, type ConnectionMsg } from '../../../src/tcp/connection.js';
import type { ClientLog } from '../../../src/tcp/protocol.js';
import { eventually } from '../../helpers/eventually.js';
import { b64 } from '../../helpers/tcp-client.js';
import { startTree } from '../otp/helpers.js';
import { MemoryTransport } from './memory-transport.js';

const KEY = 'CONNTESTKEY1';
const OTHER = 'CONNTESTKEY2';
const CRASH = '!boom';

const TCP: TcpConfig = {
  maxLineBytes: 256,
  verifyTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  maxConnections: 100,
  maxErrors: 3,
  errorWindowMs: 1000,
  restartIntensity: 2,
  restartPeriodMs: 60_000,
  restartBackoff: null,
};

/** Generous: the tests of other behaviour never meet a limit. */
const LIMITS: LimitsConfig = {
  maxVarsPerKey: 1000,
  newVarsPerMinute: 1000,
  newVarsBurst: 1000,
  varsRefreshMs: 5000,
  maxConnectionsPerKey: 100,
  maxConnectionsPerAddress: 100,
  logsPerSecond: 1000,
  logsBurst: 1000,
  metricsMaxKeys: 10,
};

const varsLine = (key: string, value: string): string => `i:${key}:${b64([{ name: 'v', type: 'string', value }])}\n`;
const logsLine = (key: string, message: string): string => `l:${key}:${b64([{ message }])}\n`;

/** The gateway as the connection sees it: keys it knows, and verifications the test answers when it likes. */
class FakeGateway implements ConnectionGateway {
  keys = new Set([KEY, OTHER]);
  /** When true, verifyKey answers with a promise the test settles with `answer` or `fail`. */
  slow = false;
  /** What reached the gateway, as `apiKey/deviceId:value` (or `:message`). */
  readonly varsSeen: string[] = [];
  readonly logsSeen: string[] = [];
  readonly devices: Array<[string, DeviceInfo]> = [];
  private pending: Array<{ apiKey: string; resolve: (ok: boolean) => void; reject: (err: Error) => void }> = [];

  verifyKey(apiKey: string): boolean | Promise<boolean> {
    if (!this.slow) return this.keys.has(apiKey);
    return new Promise((resolve, reject) => this.pending.push({ apiKey, resolve, reject }));
  }
  get waiting(): number {
    return this.pending.length;
  }
  answer(): void {
    for (const p of this.pending.splice(0)) p.resolve(this.keys.has(p.apiKey));
  }
  fail(): void {
    for (const p of this.pending.splice(0)) p.reject(new Error('store down'));
  }
  vars(apiKey: string, deviceId: string | null, vars: readonly Var[]): void {
    for (const v of vars) this.varsSeen.push(`${apiKey}/${deviceId ?? '-'}:${v.value}`);
  }
  logs(apiKey: string, deviceId: string | null, logs: readonly ClientLog[]): void {
    for (const l of logs) this.logsSeen.push(`${apiKey}/${deviceId ?? '-'}:${l.message}`);
  }
  device(event: 'connected' | 'disconnected', device: DeviceInfo): void {
    this.devices.push([event, device]);
  }
}

async function count(counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

/** Open connections by the gauge, over every transport label (the test transport's is `memory`). */
async function openConnections(metrics: Metrics, transport?: string): Promise<number> {
  const { values } = await metrics.connections.get();
  return values.filter((v) => transport === undefined || v.labels.transport === transport).reduce((n, v) => n + v.value, 0);
}

interface Opened {
  transport: MemoryTransport;
  conn: Connection;
  ref: ActorRef<ConnectionMsg>;
  path: string;
}

describe('tcp/connection', () => {
  let rt: Runtime;
  let gateway: FakeGateway;
  let metrics: Metrics;
  let verifiedCalls: string[];
  let clock: number;
  let limits: TenantLimits;
  /** The store's variable names per key, as the limits read them. */
  let storedNames: Map<string, string[]>;
  const useLimits = (cfg: Partial<LimitsConfig>): void => {
    limits = new TenantLimits({ ...LIMITS, ...cfg }, { varNames: async (k) => storedNames.get(k) ?? [], now: () => clock });
  };

  async function start(): Promise<void> {
    const cfg = TCP;
    rt = await startTree({
      id: 'root',
      start: supervisor({ strategy: 'one_for_one', intensity: 1, period: 60_000 }, [
        // As the listener's conns supervisor: one connection's crashes are its own.
        { id: 'conns', start: dynamicSupervisor({ childIntensity: cfg.restartIntensity, childPeriod: cfg.restartPeriodMs }) },
      ]),
    });
  }

  async function open(tcp: Partial<TcpConfig> = {}, transport = new MemoryTransport()): Promise<Opened> {
    const cfg = { ...TCP, ...tcp };
    const conn = new Connection(newConnectionId(), transport, cfg, () => clock);
    const deps = {
      tcp: cfg,
      gateway,
      limits,
      metrics,
      nodeId: 'node-1',
      crashPrefix: CRASH,
      onVerified: (c: Connection) => void verifiedCalls.push(c.id),
    };
    const ref = await rt.dynamicSupervisor('/root/conns').startChild<ConnectionMsg>(connectionChildSpec(conn, deps));
    return { transport, conn, ref, path: ref.path };
  }

  async function verified(tcp: Partial<TcpConfig> = {}): Promise<Opened> {
    const o = await open(tcp);
    o.transport.send(`v:${KEY}:dev-1\n`);
    await eventually(() => expect(o.transport.lines).to.deep.equal(['OK']));
    o.transport.received = '';
    return o;
  }

  beforeEach(async () => {
    gateway = new FakeGateway();
    metrics = new Metrics();
    verifiedCalls = [];
    clock = 1_000_000;
    storedNames = new Map();
    useLimits({});
    await start();
  });

  afterEach(async () => {
    await rt.stop();
  });

  describe('lines', () => {
    it('runs the lines of one chunk in order, and a line split across chunks once whole', async () => {
      const { transport } = await verified();
      const split = varsLine(KEY, 'c');
      transport.send(varsLine(KEY, 'a') + logsLine(KEY, 'b') + split.slice(0, 10));
      transport.send(split.slice(10));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:a`, `${KEY}/dev-1:c`]));
      expect(gateway.logsSeen).to.deep.equal([`${KEY}/dev-1:b`]);
      expect(transport.lines).to.deep.equal([]);
    });

    it('answers i: and l: before any v: with e:not_verified, and another key with e:key_mismatch', async () => {
      const { transport } = await open({ maxErrors: 10 });
      transport.send(varsLine(KEY, 'a') + logsLine(KEY, 'b') + `v:${KEY}\n` + varsLine(OTHER, 'c') + `v:${OTHER}\n`);
      await eventually(() => expect(transport.lines).to.have.length(5));
      expect(transport.lines.map((l) => l.split(':').slice(0, 2).join(':'))).to.deep.equal([
        'e:not_verified',
        'e:not_verified',
        'OK',
        'e:key_mismatch',
        'e:key_mismatch',
      ]);
      expect(gateway.varsSeen).to.deep.equal([]);
      expect(transport.closed).to.equal(false);
    });

    it('counts lines, bytes and connections in the metrics', async () => {
      const { transport } = await open();
      expect(await openConnections(metrics)).to.equal(1);
      expect(await openConnections(metrics, 'memory')).to.equal(1);
      const chunk = `v:${KEY}\n` + varsLine(KEY, 'a') + varsLine(KEY, 'b') + logsLine(KEY, 'c') + 'nonsense\n';
      transport.send(chunk);
      await eventually(() => expect(transport.lines).to.have.length(2));
      expect(await count(metrics.linesReceived, { command: 'verify' })).to.equal(1);
      expect(await count(metrics.linesReceived, { command: 'vars' })).to.equal(2);
      expect(await count(metrics.linesReceived, { command: 'logs' })).to.equal(1);
      expect(await count(metrics.linesReceived, { command: 'invalid' })).to.equal(1);
      expect(await count(metrics.bytesReceived)).to.equal(Buffer.byteLength(chunk));
      expect(await count(metrics.protocolErrors, { code: 'unknown_command' })).to.equal(1);
      transport.close();
      await eventually(async () => expect(await openConnections(metrics)).to.equal(0));
    });
  });

  describe('a crash of the actor', () => {
    it('keeps the transport and the verification, and runs the lines after the crashing one on the fresh incarnation', async () => {
      const o = await verified();
      o.transport.send(varsLine(KEY, 'a') + `${CRASH} now\n` + varsLine(KEY, 'b') + logsLine(KEY, 'c'));
      o.transport.send(varsLine(KEY, 'd'));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:a`, `${KEY}/dev-1:b`, `${KEY}/dev-1:d`]));
      expect(gateway.logsSeen).to.deep.equal([`${KEY}/dev-1:c`]);
      expect(rt.find(o.path)?.restarts).to.equal(1);
      expect(o.transport.closed).to.equal(false);
      expect(o.conn.transport).to.equal(o.transport);
      // Registered again by the new incarnation, without a second v: line.
      expect(verifiedCalls).to.deep.equal([o.conn.id, o.conn.id]);
      expect(gateway.devices.map(([e]) => e)).to.deep.equal(['connected']);
      o.transport.send(`v:${KEY}\n`);
      await eventually(() => expect(o.transport.lines).to.deep.equal(['OK']));
      expect(o.conn.linesIn).to.equal(7);
    });

    it('runs the lines after the crashing one without waiting for more input', async () => {
      const o = await verified();
      o.transport.send(`${CRASH}\n` + varsLine(KEY, 'after'));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:after`]));
      expect(rt.find(o.path)?.restarts).to.equal(1);
    });

    it('closes the transport once the connection crashes more than tcp.restartIntensity times', async () => {
      const o = await verified();
      o.transport.send(`${CRASH} 1\n` + varsLine(KEY, 'a') + `${CRASH} 2\n` + varsLine(KEY, 'b') + `${CRASH} 3\n` + varsLine(KEY, 'never'));
      await eventually(() => expect(o.transport.closed).to.equal(true));
      expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:a`, `${KEY}/dev-1:b`]);
      expect(o.transport.ended).to.equal(true);
      expect(o.ref.alive()).to.equal(false);
      expect(rt.dynamicSupervisor('/root/conns').size).to.equal(0);
      expect(gateway.devices.map(([e, d]) => [e, d.id])).to.deep.equal([
        ['connected', o.conn.id],
        ['disconnected', o.conn.id],
      ]);
      await eventually(async () => expect(await openConnections(metrics)).to.equal(0));
    });
  });

  describe('the error budget', () => {
    const bad = 'nonsense\n';

    it('closes after more than tcp.maxErrors errors within tcp.errorWindowMs, and not before', async () => {
      const { transport, conn } = await verified();
      transport.send(bad.repeat(3));
      await eventually(() => expect(transport.lines).to.have.length(3));
      expect(transport.closed).to.equal(false);
      clock += 999;
      transport.send(bad);
      await eventually(() => expect(transport.closed).to.equal(true));
      expect(transport.lines.map((l) => l.split(':')[1])).to.deep.equal(['unknown_command', 'unknown_command', 'unknown_command', 'unknown_command', 'too_many_errors']);
      expect(transport.lines[4]).to.equal('e:too_many_errors:more than 3 errors in 1000 ms; closing');
      expect(conn.closeReason).to.equal('too many protocol errors');
      expect(await count(metrics.protocolErrors, { code: 'too_many_errors' })).to.equal(1);
    });

    it('forgets errors older than the window', async () => {
      const { transport } = await verified();
      transport.send(bad.repeat(3));
      await eventually(() => expect(transport.lines).to.have.length(3));
      // An error exactly errorWindowMs old has left the window.
      clock += 1000;
      transport.send(bad.repeat(3));
      await eventually(() => expect(transport.lines).to.have.length(6));
      transport.send(varsLine(KEY, 'still open'));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:still open`]));
      expect(transport.closed).to.equal(false);
      expect(transport.lines.every((l) => l.startsWith('e:unknown_command:'))).to.equal(true);
    });

    it('keeps its count across a crash of the actor', async () => {
      const { transport } = await verified();
      transport.send(bad.repeat(2) + `${CRASH}\n` + bad.repeat(2));
      await eventually(() => expect(transport.closed).to.equal(true));
      expect(transport.lines.map((l) => l.split(':')[1])).to.deep.equal(['unknown_command', 'unknown_command', 'unknown_command', 'unknown_command', 'too_many_errors']);
    });
  });

  describe('verify', () => {
    beforeEach(() => {
      gateway.slow = true;
    });

    it('holds the lines after a pending v:, in this chunk and later ones, and runs them once it is OK', async () => {
      const { transport } = await open();
      transport.send(`v:${KEY}:dev-9\n` + varsLine(KEY, 'a'));
      transport.send(logsLine(KEY, 'b') + varsLine(KEY, 'c'));
      await eventually(() => expect(gateway.waiting).to.equal(1));
      expect(gateway.varsSeen).to.deep.equal([]);
      expect(gateway.logsSeen).to.deep.equal([]);
      expect(transport.lines).to.deep.equal([]);
      gateway.answer();
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-9:a`, `${KEY}/dev-9:c`]));
      expect(gateway.logsSeen).to.deep.equal([`${KEY}/dev-9:b`]);
      expect(transport.lines).to.deep.equal(['OK']);
      expect(gateway.devices.map(([e, d]) => [e, d.deviceId, d.remoteAddress])).to.deep.equal([['connected', 'dev-9', transport.remoteAddress]]);
    });

    it('answers the held lines e:not_verified when the key is unknown', async () => {
      const { transport } = await open();
      transport.send(`v:UNKNOWNKEY01\n` + varsLine('UNKNOWNKEY01', 'a'));
      await eventually(() => expect(gateway.waiting).to.equal(1));
      gateway.answer();
      await eventually(() => expect(transport.lines).to.have.length(2));
      expect(transport.lines.map((l) => l.split(':')[1])).to.deep.equal(['unknown_api_key', 'not_verified']);
      expect(verifiedCalls).to.deep.equal([]);
    });

    it('answers e:unavailable when the store cannot say, and accepts a later v:', async () => {
      const { transport } = await open();
      transport.send(`v:${KEY}\n` + varsLine(KEY, 'a'));
      await eventually(() => expect(gateway.waiting).to.equal(1));
      gateway.fail();
      await eventually(() => expect(transport.lines).to.have.length(2));
      expect(transport.lines.map((l) => l.split(':')[1])).to.deep.equal(['unavailable', 'not_verified']);
      gateway.slow = false;
      transport.send(`v:${KEY}\n` + varsLine(KEY, 'b'));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/-:b`]));
      expect(transport.lines[2]).to.equal('OK');
    });

    it('closes a connection with no valid v: within tcp.verifyTimeoutMs, even one whose v: is still pending', async () => {
      const idle = await open({ verifyTimeoutMs: 30 });
      const pending = await open({ verifyTimeoutMs: 30 });
      pending.transport.send(`v:${KEY}\n`);
      await eventually(() => expect(gateway.waiting).to.equal(1));
      for (const o of [idle, pending]) {
        await eventually(() => expect(o.transport.closed).to.equal(true));
        expect(o.transport.lines).to.deep.equal(['e:verify_timeout:no valid v: line within 30 ms; closing']);
        expect(o.conn.closeReason).to.equal('verify timeout');
      }
      await eventually(() => expect(idle.ref.alive()).to.equal(false));
      // The actor waits for the verification before it reads the close from its mailbox; the late
      // answer changes nothing.
      expect(pending.ref.alive()).to.equal(true);
      gateway.answer();
      await eventually(() => expect(pending.ref.alive()).to.equal(false));
      expect(pending.conn.verified).to.equal(null);
      expect(pending.transport.lines).to.have.length(1);
      expect(verifiedCalls).to.deep.equal([]);
      expect(await count(metrics.protocolErrors, { code: 'verify_timeout' })).to.equal(2);
    });

    it('leaves a verified connection open past tcp.verifyTimeoutMs', async () => {
      gateway.slow = false;
      const ok = await verified({ verifyTimeoutMs: 30 });
      const late = await open({ verifyTimeoutMs: 30 });
      // Opened after `ok`, so its timeout fires after ok's would have.
      await eventually(() => expect(late.transport.closed).to.equal(true));
      expect(ok.transport.closed).to.equal(false);
      expect(ok.transport.lines).to.deep.equal([]);
    });
  });

  describe('timeouts and limits', () => {
    it('closes a connection silent for tcp.idleTimeoutMs and reports the device gone', async () => {
      const { transport, conn, ref } = await verified({ idleTimeoutMs: 40 });
      await eventually(() => expect(transport.closed).to.equal(true));
      expect(conn.closeReason).to.equal('idle timeout');
      expect(transport.ended).to.equal(true);
      await eventually(() => expect(ref.alive()).to.equal(false));
      expect(gateway.devices.map(([e]) => e)).to.deep.equal(['connected', 'disconnected']);
    });

    it('answers a line over tcp.maxLineBytes with e:line_too_long and carries on with the next', async () => {
      const { transport } = await verified({ maxLineBytes: 100 });
      const long = varsLine(KEY, 'x'.repeat(100));
      transport.send(long.slice(0, 60));
      transport.send(long.slice(60) + varsLine(KEY, 'ok'));
      await eventually(() => expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:ok`]));
      expect(transport.lines).to.have.length(1);
      expect(transport.lines[0]).to.match(/^e:line_too_long:line of \d+\+ bytes exceeds the maximum of 100$/);
      expect(transport.closed).to.equal(false);
    });

    it('closes, without an answer, a connection whose line never ends', async () => {
      const { transport, conn } = await verified({ maxLineBytes: 64 });
      for (let i = 0; i < 10; i++) transport.send('x'.repeat(64));
      await eventually(() => expect(transport.closed).to.equal(true));
      expect(conn.closeReason).to.equal('a line that never ends');
      expect(transport.lines).to.deep.equal(['e:line_too_long:line of 128+ bytes exceeds the maximum of 64']);
    });

    it('stops the actor when the transport was gone before it started listening', async () => {
      const transport = new MemoryTransport();
      transport.close('ECONNRESET');
      const { ref } = await open({}, transport);
      await eventually(() => expect(ref.alive()).to.equal(false));
      expect(rt.dynamicSupervisor('/root/conns').size).to.equal(0);
      expect(await openConnections(metrics)).to.equal(0);
    });
  });

  describe('per-tenant limits', () => {
    const namesLine = (key: string, names: string[]): string => `i:${key}:${b64(names.map((name) => ({ name, type: 'string', value: name })))}\n`;
    const logsOf = (key: string, n: number, tag: string): string => `l:${key}:${b64(Array.from({ length: n }, (_, i) => ({ message: `${tag}${i}` })))}\n`;

    it('writes the known and allowed variables of a line past maxVarsPerKey, and answers e:too_many_vars at most once a second', async () => {
      useLimits({ maxVarsPerKey: 3 });
      storedNames.set(KEY, ['old']);
      const { transport, conn } = await verified({ maxLineBytes: 4096 });
      transport.send(namesLine(KEY, ['a', 'old', 'b', 'c', 'd']));
      await eventually(() => expect(transport.lines).to.have.length(1));
      expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:a`, `${KEY}/dev-1:old`, `${KEY}/dev-1:b`]);
      expect(transport.lines[0]).to.equal('e:too_many_vars:2 new variables refused ("c", "d"): the key has 3 of 3');
      // More refused lines within the second: written what is allowed, answered nothing, not closed
      // (tcp.maxErrors is 3: a refusal costs no error budget).
      for (let i = 0; i < 5; i++) transport.send(namesLine(KEY, [`x${i}`, 'a']));
      await eventually(() => expect(gateway.varsSeen).to.have.length(8));
      expect(transport.lines).to.have.length(1);
      clock += 1000;
      transport.send(namesLine(KEY, ['y']));
      await eventually(() => expect(transport.lines).to.have.length(2));
      expect(transport.lines[1]).to.match(/^e:too_many_vars:1 new variable refused \("y"\)/);
      expect(conn.closed).to.equal(false);
      expect(await count(metrics.protocolErrors, { code: 'too_many_vars' })).to.equal(2);
    });

    it('answers e:too_many_new_vars past the new-name budget, and takes new names again once it refills', async () => {
      useLimits({ newVarsBurst: 2, newVarsPerMinute: 60 });
      const { transport } = await verified();
      transport.send(namesLine(KEY, ['a', 'b', 'c']));
      await eventually(() => expect(transport.lines).to.have.length(1));
      expect(transport.lines[0]).to.equal('e:too_many_new_vars:1 new variable refused ("c"): over 60 new variables per minute');
      clock += 1000;
      transport.send(namesLine(KEY, ['c', 'a']));
      await eventually(() => expect(gateway.varsSeen).to.have.length(4));
      expect(gateway.varsSeen.slice(2)).to.deep.equal([`${KEY}/dev-1:c`, `${KEY}/dev-1:a`]);
      expect(transport.lines).to.have.length(1);
    });

    it('waits for the store before deciding the first i: line of a key, keeping the order of the lines after it', async () => {
      useLimits({ maxVarsPerKey: 2 });
      storedNames.set(KEY, ['s1', 's2']);
      const { transport } = await open();
      transport.send(`v:${KEY}:dev-1\n` + namesLine(KEY, ['s2', 'new']) + logsLine(KEY, 'after'));
      await eventually(() => expect(gateway.logsSeen).to.have.length(1));
      expect(gateway.varsSeen).to.deep.equal([`${KEY}/dev-1:s2`]);
      expect(transport.lines.map((l) => l.split(':')[0] === 'e' ? l.split(':')[1] : l)).to.deep.equal(['OK', 'too_many_vars']);
    });

    it('passes the first entries of an l: line past logsPerSecond and answers e:rate_limited at most once a second', async () => {
      useLimits({ logsPerSecond: 10, logsBurst: 10 });
      const { transport } = await verified({ maxLineBytes: 4096 });
      transport.send(logsOf(KEY, 8, 'a') + logsOf(KEY, 5, 'b') + logsOf(KEY, 5, 'c'));
      await eventually(() => expect(transport.lines).to.have.length(1));
      expect(gateway.logsSeen).to.deep.equal([...Array.from({ length: 8 }, (_, i) => `${KEY}/dev-1:a${i}`), `${KEY}/dev-1:b0`, `${KEY}/dev-1:b1`]);
      expect(transport.lines[0]).to.equal('e:rate_limited:3 of 5 logs dropped: the key is over 10 logs/s');
      clock += 500;
      transport.send(logsOf(KEY, 10, 'd') + `l:${KEY}:W10=\n`);
      await eventually(() => expect(gateway.logsSeen).to.have.length(15));
      // Nothing more answered within the second, however much was dropped.
      transport.send(varsLine(KEY, 'sync'));
      await eventually(() => expect(gateway.varsSeen).to.have.length(1));
      expect(transport.lines).to.have.length(1);
      clock += 500;
      transport.send(logsOf(KEY, 20, 'e'));
      await eventually(() => expect(transport.lines).to.have.length(2));
      expect(transport.lines[1]).to.equal('e:rate_limited:15 of 20 logs dropped: the key is over 10 logs/s');
    });

    it('refuses a v: past maxConnectionsPerKey with e:too_many_connections and closes; a closed connection frees its slot', async () => {
      useLimits({ maxConnectionsPerKey: 2 });
      const a = await verified();
      await verified();
      const third = await open();
      third.transport.send(`v:${KEY}\n`);
      await eventually(() => expect(third.transport.closed).to.equal(true));
      expect(third.transport.lines).to.deep.equal(['e:too_many_connections:connection limit of 2 per API key reached; retry later']);
      expect(gateway.devices.filter(([e]) => e === 'connected')).to.have.length(2);
      const other = await open();
      other.transport.send(`v:${OTHER}\n`);
      await eventually(() => expect(other.transport.lines).to.deep.equal(['OK']));
      a.transport.close();
      await eventually(() => expect(limits.keyInfo(KEY)?.connections).to.equal(1));
      await verified();
      expect(limits.keyInfo(KEY)?.connections).to.equal(2);
    });

    it('keeps one slot per connection across a crash of the actor and a repeated v:, and gives it back once', async () => {
      useLimits({ maxConnectionsPerKey: 1 });
      const o = await verified();
      o.transport.send(`${CRASH}\nv:${KEY}\n`);
      await eventually(() => expect(o.transport.lines).to.deep.equal(['OK']));
      expect(rt.find(o.path)?.restarts).to.equal(1);
      expect(limits.keyInfo(KEY)?.connections).to.equal(1);
      o.transport.close();
      await eventually(() => expect(limits.keyInfo(KEY)?.connections ?? 0).to.equal(0));
      await verified();
      expect(limits.keyInfo(KEY)?.connections).to.equal(1);
    });

    it('takes no slot for a peer gone before its slow v: was answered', async () => {
      useLimits({ maxConnectionsPerKey: 1 });
      gateway.slow = true;
      const o = await open();
      o.transport.send(`v:${KEY}\n`);
      await eventually(() => expect(gateway.waiting).to.equal(1));
      o.transport.close();
      gateway.answer();
      gateway.slow = false;
      await eventually(() => expect(o.ref.alive()).to.equal(false));
      expect(limits.keyInfo(KEY)?.connections ?? 0).to.equal(0);
      await verified();
    });
  });

  describe('a slow reader', () => {
    it('keeps writing past the transport’s high-water mark, and drops the reader past 8 MiB queued', async () => {
      const { transport, conn } = await verified();
      transport.stall();
      const big = `v:${b64([{ name: 'blob', type: 'string', value: 'x'.repeat(1024 * 1024) }])}\n`;
      let n = 0;
      while (transport.buffered <= 8 * 1024 * 1024) {
        expect(conn.write(big)).to.equal(true);
        n += 1;
      }
      expect(transport.closed).to.equal(false);
      expect(conn.write('v:after\n')).to.equal(false);
      expect(conn.closeReason).to.equal('slow reader: write backlog over 8 MiB');
      expect(transport.ended).to.equal(true);
      // n blobs and the OK of the v: line.
      expect(conn.linesOut).to.equal(n + 1);
      expect(conn.write('v:later\n')).to.equal(false);
    });

    it('forgives a backlog the reader has caught up with', async () => {
      const { transport, conn } = await verified();
      transport.stall();
      const big = 'v:' + 'x'.repeat(9 * 1024 * 1024) + '\n';
      expect(conn.write(big)).to.equal(true);
      transport.resume();
      expect(conn.write('v:next\n')).to.equal(true);
      expect(transport.lines.map((l) => l.slice(0, 6))).to.deep.equal(['v:xxxx', 'v:next']);
      expect(transport.closed).to.equal(false);
    });
  });
});
