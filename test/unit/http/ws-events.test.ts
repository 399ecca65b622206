import { expect } from 'chai';
import { eventsText } from '../../../src/gateway/gateway.js';
import { eventFrames, frameType, isEventBatch } from '../../../src/http/ws.js';
import type { DashboardEvent } from '../../../src/wire.js';

describe('isEventBatch (Gateway.publishMany’s message, unpacked by /ws)', () => {
  it('takes a list of events under type "events" and refuses anything else, which is then forwarded as the one frame it is', () => {
    expect(isEventBatch({ type: 'events', events: [{ type: 'history', entry: {} }, { type: 'delivery', name: 'n' }] })).to.equal(true);
    expect(isEventBatch({ type: 'events', events: [] })).to.equal(true);
    const refused: unknown[] = [
      null,
      'events',
      [],
      { events: [] },
      { type: 'vars', events: [] },
      { type: 'events' },
      { type: 'events', events: 'nope' },
      { type: 'events', events: { length: 2 } },
      { type: 'events', events: Array.from({ length: 10_001 }, () => ({ type: 'history' })) },
    ];
    for (const m of refused) expect(isEventBatch(m), JSON.stringify(m)?.slice(0, 40)).to.equal(false);
  });
});

describe('a batch of events as text (Gateway.publishMany’s eventsText, cut into frames by /ws)', () => {
  const events = [
    { type: 'overrides', overrides: [{ name: 'a]b', value: '},{"type":"x"}', target: { all: true } }] },
    { type: 'vars', apiKey: 'K', deviceId: null, vars: [{ name: 'é😀\u2028', type: 'string', value: '"\\' }], source: 'dashboard' },
    { type: 'delivery', name: 'n', names: ['n'], delivered: 1, buffered: false, node: 'x' },
    { type: 'history', entry: { id: '1-1', changes: [] } },
  ] as unknown as DashboardEvent[];

  it('decodes as the message {type, sizes, events} it stands for, and cuts into exactly each event’s JSON.stringify, in order', () => {
    const text = eventsText(events) as string;
    const decoded = JSON.parse(text) as { type: string; sizes: number[]; events: unknown[] };
    expect(decoded.type).to.equal('events');
    expect(decoded.events).to.deep.equal(events);
    expect(isEventBatch(decoded)).to.equal(true);
    expect(eventFrames(text)).to.deep.equal(events.map((e) => JSON.stringify(e)));
    expect(eventFrames(eventsText(events.slice(0, 1)) as string)).to.deep.equal([JSON.stringify(events[0])]);
    expect(eventFrames('{"type":"events","sizes":[],"events":[]}')).to.deep.equal([]);
  });

  it('refuses a text that is not laid out as eventsText lays it out: wrong sizes, truncated, trailing bytes, a plain batch, oversized', () => {
    const text = eventsText(events) as string;
    const sizes = events.map((e) => JSON.stringify(e).length);
    const withSizes = (list: unknown[]) => text.replace(`[${sizes.join(',')}]`, `[${list.join(',')}]`);
    const refused = [
      withSizes([sizes[0]! + 1, ...sizes.slice(1)]),
      withSizes([sizes[0]! - 1, ...sizes.slice(1)]),
      withSizes(sizes.slice(1)),
      withSizes([...sizes, 2]),
      withSizes(['1e1', ...sizes.slice(1)]),
      withSizes([-1, ...sizes.slice(1)]),
      withSizes(['', ...sizes.slice(1)]),
      text.slice(0, -1),
      `${text} `,
      `${text}}`,
      JSON.stringify({ type: 'events', events }),
      JSON.stringify({ type: 'events', events: [], sizes: [] }),
      '{"type":"events","sizes":[',
      '{"type":"events","sizes":[2],"events":[{}',
      `{"type":"events","sizes":[${Array.from({ length: 10_001 }, () => 2).join(',')}],"events":[${Array.from({ length: 10_001 }, () => '{}').join(',')}]}`,
      '{"type":"vars"}',
      '',
    ];
    for (const t of refused) expect(eventFrames(t), t.slice(0, 60)).to.equal(null);
  });

  it('reads an event’s type from its text only where JSON.stringify put it first, unescaped', () => {
    for (const e of events) expect(frameType(JSON.stringify(e))).to.equal(e.type);
    expect(frameType(JSON.stringify({ type: 'a"b' }))).to.equal(null);
    expect(frameType(JSON.stringify({ type: 'a\\b' }))).to.equal(null);
    expect(frameType(JSON.stringify({ name: 'x', type: 'vars' }))).to.equal(null);
    expect(frameType('{ "type":"vars"}')).to.equal(null);
    expect(frameType('{"type":"vars')).to.equal(null);
    expect(frameType('"vars"')).to.equal(null);
  });

  it('gives null for a list with an event JSON cannot carry, so the pubsub’s own encoding reports it', () => {
    expect(eventsText([undefined as unknown as DashboardEvent])).to.equal(null);
  });
});
