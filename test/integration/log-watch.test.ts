/**
 * The live log tail only while watched, across two daemons on one Redis (gateway/log-watch.ts,
 * issue 14): a device's logs on node A with no dashboard anywhere stop being published; a dashboard
 * that opens on node B has every node publishing them again by its `ready`, and gets the next log;
 * when it leaves, A mutes the key again. Every log is searchable throughout: only the live copy stops.
 */
import { expect } from 'chai';
import { signedInUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';

const messages = (frames: Frame[]): string[] => frames.filter((f) => f.type === 'logs').flatMap((f) => (f.logs as Array<{ message: string }>).map((l) => l.message));

describe('live logs only while a dashboard watches, across two nodes (issue 14)', function () {
  this.timeout(30_000);
  let a: Daemon;
  let b: Daemon;

  before(async () => {
    [a, b] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('mutes a key nobody watches, and a dashboard opening on the other node gets the next log', async () => {
    const user = await signedInUser(a);
    const dev = await LineClient.open(a.tcpPort);
    dev.line(`v:${user.apiKey}:phone-1`);
    expect(await dev.next()).to.equal('OK');
    let n = 0;
    // Nobody watches: A stops publishing the key's live logs.
    await eventually(() => {
      dev.line(`l:${user.apiKey}:${b64([{ message: `unwatched ${n++}` }])}`);
      expect(a.ctx.gateway.unwatchedLogKeys).to.equal(1);
    });
    const live = await WsClient.open(b.httpPort, user.token);
    // By `ready`, A has heard the watch.
    expect(a.ctx.gateway.unwatchedLogKeys).to.equal(0);
    dev.line(`l:${user.apiKey}:${b64([{ message: 'watched' }])}`);
    await eventually(() => expect(messages(live.frames)).to.include('watched'));
    // A log every few ms while watched: every one reaches the dashboard, none is muted.
    for (let i = 0; i < 50; i++) dev.line(`l:${user.apiKey}:${b64([{ message: `burst ${i}` }])}`);
    await eventually(() => expect(messages(live.frames).filter((m) => m.startsWith('burst ')).length).to.equal(50));
    expect(a.ctx.gateway.unwatchedLogKeys).to.equal(0);
    // The dashboard leaves: the key is muted again.
    live.ws.close();
    await eventually(() => {
      dev.line(`l:${user.apiKey}:${b64([{ message: `after ${n++}` }])}`);
      expect(a.ctx.gateway.unwatchedLogKeys).to.equal(1);
    });
    dev.close();
  });

  it('a second dashboard of the key on the first one’s node needs no watch of its own: it is live at once', async () => {
    const user = await signedInUser(a);
    const first = await WsClient.open(a.httpPort, user.token);
    const second = await WsClient.open(a.httpPort, user.token);
    const dev = await LineClient.open(b.tcpPort);
    dev.line(`v:${user.apiKey}:phone-2`);
    expect(await dev.next()).to.equal('OK');
    dev.line(`l:${user.apiKey}:${b64([{ message: 'to both' }])}`);
    await eventually(() => {
      expect(messages(first.frames)).to.include('to both');
      expect(messages(second.frames)).to.include('to both');
    });
    expect(b.ctx.gateway.unwatchedLogKeys).to.equal(0);
    first.ws.close();
    second.ws.close();
    dev.close();
  });
});
