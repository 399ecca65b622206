/** The SDK's variables: batching of i: lines, typed values, dashboard changes arriving as v: lines, daemon errors. */
import { expect } from 'chai';
import { connect, SdkError, type Client, type ConnectOptions, type VarChange } from '../../src/sdk/index.js';
import { eventually } from '../helpers/eventually.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';

describe('sdk variables', () => {
  let daemon: TestDaemon;
  let client: Client;
  const open = async (opts: Partial<ConnectOptions> = {}): Promise<Client> =>
    (client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY, ...opts }));

  beforeEach(async () => {
    daemon = await TestDaemon.start({ keys: [KEY] });
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  describe('setVar / setVars', () => {
    it('sends changes within the window in one i: line, latest value per name, types inferred, values as strings', async () => {
      await open({ varsWindowMs: 30 });
      client.setVar('speed', 1);
      client.setVar('speed', -1);
      client.setVar('gravity', 9.81);
      client.setVar('god_mode', true);
      client.setVar('title', 'Boss 2');
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      await client.flush();
      expect(daemon.of('vars')).to.have.length(1);
      expect(daemon.of('vars')[0]?.vars).to.deep.equal([
        { name: 'speed', type: 'integer', value: '-1' },
        { name: 'gravity', type: 'float', value: '9.81' },
        { name: 'god_mode', type: 'boolean', value: 'true' },
        { name: 'title', type: 'string', value: 'Boss 2' },
      ]);
    });

    it('sends a change made after the window in its own line', async () => {
      await open({ varsWindowMs: 5 });
      client.setVar('a', 1);
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      client.setVar('b', 2);
      await eventually(() => expect(daemon.of('vars')).to.have.length(2));
      expect(daemon.of('vars').map((c) => c.vars)).to.deep.equal([[{ name: 'a', type: 'integer', value: '1' }], [{ name: 'b', type: 'integer', value: '2' }]]);
    });

    it('setVars takes explicit types; flush() sends at once', async () => {
      await open({ varsWindowMs: 60_000 });
      client.setVars([
        { name: 'ratio', value: 2, type: 'float' },
        { name: 'tint', value: '#ff0000', type: 'color' },
      ]);
      await client.flush();
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      expect(daemon.of('vars')[0]?.vars).to.deep.equal([
        { name: 'ratio', type: 'float', value: '2' },
        { name: 'tint', type: 'color', value: '#ff0000' },
      ]);
      expect(client.get('ratio')).to.equal(2);
      expect(client.get('tint')).to.equal('#ff0000');
      expect(client.get('missing')).to.equal(undefined);
    });

    it('throws bad_var for a value the daemon would reject and sends nothing of that call', async () => {
      await open({ varsWindowMs: 1 });
      expect(() => client.setVar('speed', NaN)).to.throw(SdkError).with.property('code', 'bad_var');
      expect(() => client.setVars([{ name: 'ok', value: 1 }, { name: '', value: 2 }])).to.throw(SdkError).with.property('code', 'bad_var');
      expect(client.get('ok')).to.equal(undefined);
      await client.flush();
      expect(daemon.of('vars')).to.have.length(0);
      expect(daemon.of('error')).to.have.length(0);
    });

    it('splits many variables over several lines under maxLineBytes', async () => {
      await open({ maxLineBytes: 1024, varsWindowMs: 60_000 });
      for (let i = 0; i < 100; i++) client.setVar(`var_${i}`, 'x'.repeat(20));
      await client.flush();
      await eventually(() => expect(daemon.of('vars').flatMap((c) => c.vars)).to.have.length(100));
      const lines = daemon.of('vars');
      expect(lines.length).to.be.greaterThan(3);
      for (const l of lines) expect(Buffer.byteLength(l.line)).to.be.at.most(1024);
      expect(daemon.of('error')).to.have.length(0);
    });
  });

  describe("on('vars')", () => {
    it('delivers dashboard changes typed by their type, and get() returns them', async () => {
      await open();
      client.setVar('speed', 1);
      await client.flush();
      const got: VarChange[][] = [];
      client.on('vars', (changes) => got.push(changes));
      daemon.push(KEY, [
        { name: 'speed', type: 'integer', value: '7' },
        { name: 'god_mode', type: 'boolean', value: 'true' },
        { name: 'title', type: 'string', value: '42' },
        { name: 'gravity', type: 'float', value: 'heavy' },
      ]);
      await eventually(() => expect(got).to.have.length(1));
      expect(got[0]).to.deep.equal([
        { name: 'speed', type: 'integer', value: 7, raw: '7', previous: 1 },
        { name: 'god_mode', type: 'boolean', value: true, raw: 'true', previous: undefined },
        { name: 'title', type: 'string', value: '42', raw: '42', previous: undefined },
        { name: 'gravity', type: 'float', value: 'heavy', raw: 'heavy', previous: undefined },
      ]);
      expect(client.get('speed')).to.equal(7);
      expect(client.getAll()).to.deep.equal({ speed: 7, god_mode: true, title: '42', gravity: 'heavy' });
    });

    it('confirms a changed value back to the daemon once, and not an unchanged one', async () => {
      await open({ varsWindowMs: 1 });
      client.setVar('speed', 1);
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      const got: VarChange[][] = [];
      client.on('vars', (c) => got.push(c));
      daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '7' }]);
      await eventually(() => expect(daemon.of('vars')).to.have.length(2));
      expect(daemon.of('vars')[1]?.vars).to.deep.equal([{ name: 'speed', type: 'integer', value: '7' }]);
      daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '7' }]);
      await eventually(() => expect(got).to.have.length(2));
      await client.flush();
      expect(daemon.of('vars')).to.have.length(2);
    });

    it('a dashboard value sent again before its confirmation left still gets confirmed (the daemon re-sends an override that crossed a report)', async () => {
      await open({ varsWindowMs: 200 });
      client.setVar('difficulty', 'normal');
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      const got: VarChange[][] = [];
      client.on('vars', (c) => got.push(c));
      // The change, and the same value again inside the confirmation's window.
      daemon.push(KEY, [{ name: 'difficulty', type: 'string', value: 'hard' }]);
      daemon.push(KEY, [{ name: 'difficulty', type: 'string', value: 'hard' }]);
      await eventually(() => expect(got).to.have.length(2));
      await client.flush();
      await eventually(() => expect(daemon.of('vars')).to.have.length(2));
      // Without the confirmation the daemon's last report of the device stays "normal".
      expect(daemon.of('vars').map((v) => v.vars)).to.deep.equal([[{ name: 'difficulty', type: 'string', value: 'normal' }], [{ name: 'difficulty', type: 'string', value: 'hard' }]]);
    });

    it('does not confirm when confirmRemoteVars is false, and a dashboard change overrides a local one not yet sent', async () => {
      await open({ varsWindowMs: 60_000, confirmRemoteVars: false });
      const got: VarChange[][] = [];
      client.on('vars', (c) => got.push(c));
      client.setVar('speed', 1);
      daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '7' }]);
      await eventually(() => expect(got).to.have.length(1));
      await client.flush();
      expect(daemon.of('vars')).to.have.length(0);
      expect(client.get('speed')).to.equal(7);
    });

    it('receives changes buffered while the device was away right after OK', async () => {
      daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '3' }]);
      daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '5' }]);
      await open();
      await eventually(() => expect(client.get('speed')).to.equal(5));
    });

    it('a throwing listener is reported as an error event and the next lines still arrive', async () => {
      await open();
      const errors: SdkError[] = [];
      client.on('error', (e) => errors.push(e));
      client.on('vars', () => {
        throw new Error('game bug');
      });
      daemon.push(KEY, [{ name: 'a', type: 'integer', value: '1' }]);
      daemon.push(KEY, [{ name: 'b', type: 'integer', value: '2' }]);
      await eventually(() => expect(client.get('b')).to.equal(2));
      expect(errors.map((e) => e.code)).to.deep.equal(['listener_error', 'listener_error']);
    });
  });

  describe("on('error')", () => {
    it('surfaces daemon e: lines as SdkError with the code and stays connected', async () => {
      await open();
      const errors: SdkError[] = [];
      client.on('error', (e) => errors.push(e));
      daemon.sendRaw('e:bad_shape:vars[0].value must be a string, number or boolean\r\n');
      await eventually(() => expect(errors).to.have.length(1));
      expect(errors[0]).to.include({ code: 'bad_shape', fromDaemon: true, message: 'vars[0].value must be a string, number or boolean' });
      expect(client.connected).to.equal(true);
    });

    it('reports undecodable daemon lines and ignores unknown ones', async () => {
      await open();
      const errors: SdkError[] = [];
      client.on('error', (e) => errors.push(e));
      daemon.sendRaw(`p:future-extension\nv:${KEY}:not-base64!\nv:OtherKey1234:W10=\n`);
      await eventually(() => expect(errors).to.have.length(2));
      expect(errors.map((e) => e.code)).to.deep.equal(['bad_server_line', 'bad_server_line']);
    });

    it('never crashes the process when nobody listens for errors', async () => {
      await open();
      daemon.sendRaw('e:internal:oops\n');
      daemon.push(KEY, [{ name: 'after', type: 'integer', value: '1' }]);
      await eventually(() => expect(client.get('after')).to.equal(1));
      expect(client.connected).to.equal(true);
    });

    it('survives a line from the daemon over maxLineBytes', async () => {
      await open({ maxLineBytes: 512 });
      const errors: SdkError[] = [];
      client.on('error', (e) => errors.push(e));
      daemon.sendRaw(`${'x'.repeat(2000)}\n`);
      daemon.push(KEY, [{ name: 'after', type: 'integer', value: '1' }]);
      await eventually(() => expect(client.get('after')).to.equal(1));
      expect(errors.map((e) => e.code)).to.deep.equal(['line_too_long']);
    });
  });
});
