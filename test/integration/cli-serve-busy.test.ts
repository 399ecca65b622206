/** `observerio serve` on a port that is taken: one line naming the port and the variable to change, exit 1. */
import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { freePort } from '../helpers/free-port.js';
import { tempDir } from '../helpers/processes.js';
import { requireBuiltCli, runCli } from '../helpers/cli.js';

describe('observerio serve on a busy port (built CLI)', function () {
  this.timeout(30_000);
  let taken: Server;
  let port: number;

  before(requireBuiltCli);
  beforeEach(async () => {
    port = await freePort();
    taken = createServer();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', () => r()));
  });
  afterEach(() => new Promise<void>((r) => taken.close(() => r())));

  it('the SDK TCP port: one line that names OBSERVERIO_TCP_PORT', async () => {
    const r = await runCli(['serve', '--log-level', 'warn'], { env: { OBSERVERIO_TCP_PORT: String(port), OBSERVERIO_HTTP_PORT: '0', OBSERVERIO_DATA_DIR: tempDir('observerio-busy-').path } });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`observerio: cannot start: 127.0.0.1:${port} is already in use (the SDK TCP port; set OBSERVERIO_TCP_PORT or --tcp-port to another port, or stop what listens there)\n`);
  });

  it('the HTTP port: one line that names OBSERVERIO_HTTP_PORT', async () => {
    const r = await runCli(['serve', '--log-level', 'warn'], { env: { OBSERVERIO_TCP_PORT: '0', OBSERVERIO_HTTP_PORT: String(port), OBSERVERIO_DATA_DIR: tempDir('observerio-busy-').path } });
    expect(r.code).to.equal(1);
    expect(r.stderr.split('\n').filter(Boolean)).to.have.length(1);
    expect(r.stderr).to.contain(`127.0.0.1:${port}`).and.contain('OBSERVERIO_HTTP_PORT');
  });
});
