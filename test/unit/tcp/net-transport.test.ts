/** NetTransport over real loopback sockets: events, idle timeouts on the shared sweep, close. */
import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { NetTransport } from '../../../src/tcp/net-transport.js';
import { idleSweep, sweepResolution } from '../../../src/tcp/idle-sweep.js';
import { eventually } from '../../helpers/eventually.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('NetTransport (TCP)', () => {
  let server: Server;
  let accepted: Socket[];
  let clients: Socket[];
  let port: number;

  beforeEach(async () => {
    accepted = [];
    clients = [];
    server = createServer((s) => void accepted.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
  });

  /** A connected pair: the client socket and the server side's transport. */
  const pair = async (): Promise<{ client: Socket; transport: NetTransport; closedWith: () => string | null; data: string[] }> => {
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    clients.push(client);
    const n = accepted.length;
    await eventually(() => expect(accepted.length).to.equal(n + 1));
    const transport = new NetTransport(accepted[n] as Socket);
    let closedWith: string | null = null;
    const data: string[] = [];
    transport.listen({ data: (c) => void data.push(c.toString()), closed: (r) => (closedWith = r) });
    return { client, transport, closedWith: () => closedWith, data };
  };

  it('hands over the bytes it receives and reports the peer closing once', async () => {
    const { client, data, closedWith } = await pair();
    client.write('v:AbCdEf123456\n');
    await eventually(() => expect(data.join('')).to.equal('v:AbCdEf123456\n'));
    client.end();
    await eventually(() => expect(closedWith()).to.equal('peer closed'));
  });

  it('calls onIdle once, no sooner than the timeout after the last byte either way, and soon after it', async () => {
    const ms = 150;
    const slack = sweepResolution(ms) + 1000;
    const { transport } = await pair();
    const fired: number[] = [];
    const t0 = performance.now();
    transport.setIdleTimeout(ms, () => void fired.push(performance.now()));
    await eventually(() => expect(fired).to.have.length(1), { timeoutMs: 3000 });
    const after = (fired[0] as number) - t0;
    expect(after).to.be.at.least(ms);
    expect(after).to.be.below(ms + slack);
    await sleep(ms * 2);
    expect(fired).to.have.length(1);
  });

  it('is not idle while the peer sends, nor while it writes to the peer', async () => {
    const ms = 150;
    const { client, transport } = await pair();
    const fired: number[] = [];
    transport.setIdleTimeout(ms, () => void fired.push(performance.now()));
    for (let i = 0; i < 8; i++) {
      await sleep(ms / 3);
      client.write('l\n');
    }
    expect(fired, 'while receiving').to.deep.equal([]);
    for (let i = 0; i < 8; i++) {
      await sleep(ms / 3);
      transport.write('OK\n');
    }
    expect(fired, 'while writing').to.deep.equal([]);
    const last = performance.now();
    await eventually(() => expect(fired).to.have.length(1), { timeoutMs: 3000 });
    expect((fired[0] as number) - last).to.be.at.least(ms);
  });

  it('leaves the sweep when the socket closes, and never calls onIdle after', async () => {
    const ms = 120;
    const before = idleSweep(ms).size;
    const { client, transport, closedWith } = await pair();
    let fired = 0;
    transport.setIdleTimeout(ms, () => void (fired += 1));
    expect(idleSweep(ms).size).to.equal(before + 1);
    client.destroy();
    await eventually(() => expect(closedWith()).to.not.equal(null));
    expect(idleSweep(ms).size).to.equal(before);
    await sleep(ms * 2);
    expect(fired).to.equal(0);
  });
});
