import { expect } from 'chai';
import { isEventBatch } from '../../../src/http/ws.js';

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
