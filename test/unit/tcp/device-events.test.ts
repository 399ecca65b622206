import { expect } from 'chai';
import type { DashboardEvent, DeviceInfo } from '../../../src/gateway/gateway.js';
import { DEVICE_EVENTS_TURN_MS, DeviceEvents } from '../../../src/tcp/device-events.js';
import { eventually } from '../../helpers/eventually.js';

const info = (apiKey: string, id: string): DeviceInfo => ({ id, apiKey, deviceId: id, remoteAddress: '127.0.0.1:1', connectedAt: 1, lastLineAt: 1, linesIn: 1, node: 'n' });

describe('DeviceEvents (device events in turns, one message per key)', () => {
  let published: Array<[string, string[]]>;
  const gateway = {
    publishMany: (channel: string, events: readonly DashboardEvent[]) =>
      void published.push([channel, events.map((e) => (e.type === 'device' ? `${e.event} ${e.device.id}` : e.type))]),
  };
  beforeEach(() => (published = []));

  it('publishes a lone event at once', () => {
    const ev = new DeviceEvents(gateway);
    ev.device('connected', info('KEY000000001', 'a'));
    expect(published).to.deep.equal([['KEY000000001:devices', ['connected a']]]);
    expect(ev.size).to.equal(0);
  });

  it(`holds the events that follow within ${DEVICE_EVENTS_TURN_MS} ms and publishes them together, per key, in order`, async () => {
    let t = 0;
    const ev = new DeviceEvents(gateway, () => t);
    ev.device('connected', info('KEY000000001', 'a'));
    t += 1;
    ev.device('connected', info('KEY000000001', 'b'));
    ev.device('connected', info('KEY000000002', 'x'));
    ev.device('disconnected', info('KEY000000001', 'b'));
    ev.device('connected', info('KEY000000001', 'c'));
    expect(published).to.have.length(1);
    expect(ev.size).to.equal(4);
    await eventually(() => expect(published).to.have.length(3));
    expect(published.slice(1)).to.deep.equal([
      ['KEY000000001:devices', ['connected b', 'disconnected b', 'connected c']],
      ['KEY000000002:devices', ['connected x']],
    ]);
    expect(ev.size).to.equal(0);
    // A turn later, the next one goes at once again.
    t += DEVICE_EVENTS_TURN_MS;
    ev.device('disconnected', info('KEY000000002', 'x'));
    expect(published[3]).to.deep.equal(['KEY000000002:devices', ['disconnected x']]);
  });

  it('with batching off, publishes what waits at once, and every later event alone', async () => {
    let t = 0;
    const ev = new DeviceEvents(gateway, () => t);
    ev.device('connected', info('KEY000000001', 'a'));
    ev.device('disconnected', info('KEY000000001', 'a'));
    expect(published).to.have.length(1);
    ev.setBatching(false);
    expect(published).to.have.length(2);
    ev.device('connected', info('KEY000000001', 'b'));
    ev.device('disconnected', info('KEY000000001', 'b'));
    expect(published).to.deep.equal([
      ['KEY000000001:devices', ['connected a']],
      ['KEY000000001:devices', ['disconnected a']],
      ['KEY000000001:devices', ['connected b']],
      ['KEY000000001:devices', ['disconnected b']],
    ]);
    // Nothing is published twice by the timer that was waiting.
    await new Promise((r) => setTimeout(r, DEVICE_EVENTS_TURN_MS * 2));
    expect(published).to.have.length(4);
    ev.setBatching(true);
    t += DEVICE_EVENTS_TURN_MS;
    ev.device('connected', info('KEY000000001', 'c'));
    ev.device('connected', info('KEY000000001', 'd'));
    expect(published).to.have.length(5);
  });
});
