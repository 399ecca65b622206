import { expect } from 'chai';
import { sharedMeili, sharedRedis } from '../helpers/processes.js';

describe('test helpers', () => {
  it('start a private redis-server', async () => {
    const r = await sharedRedis();
    const c = r.client();
    try {
      expect(await c.ping()).to.equal('PONG');
    } finally {
      c.disconnect();
    }
  });
  it('start the Meilisearch binary', async () => {
    const m = await sharedMeili();
    const res = await fetch(`${m.url}/health`);
    expect(res.status).to.equal(200);
  });
});
