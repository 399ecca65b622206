/**
 * The daemon's logger: LOG_LEVEL (through the configuration) decides what is written; JSON lines
 * for machines, readable lines on a terminal; child loggers carry the actor path.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';

/** A destination that keeps what it is given; `isTTY` makes it look like a terminal. */
function sink(isTTY = false): Writable & { text(): string; isTTY?: boolean } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString('utf8');
      done();
    },
  }) as Writable & { text(): string; isTTY?: boolean };
  w.text = () => text;
  if (isTTY) w.isTTY = true;
  return w;
}

const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('log', () => {
  describe('createLogger', () => {
    it('writes one JSON object per line, with the service, level, time and message', () => {
      const out = sink();
      const log = createLogger({ level: 'info', destination: out });
      log.info({ apiKey: 'abcdefghijkl' }, 'device verified');
      const [line, ...rest] = jsonLines(out.text());
      expect(rest).to.deep.equal([]);
      expect(line).to.include({ service: 'observerio', level: 30, msg: 'device verified', apiKey: 'abcdefghijkl' });
      expect(line!.time).to.be.a('number');
    });

    it('writes only what the level lets through', () => {
      const out = sink();
      const log = createLogger({ level: 'warn', destination: out });
      log.debug('no');
      log.info('no');
      log.warn('yes warn');
      log.error('yes error');
      expect(jsonLines(out.text()).map((l) => l.msg)).to.deep.equal(['yes warn', 'yes error']);
    });

    it('writes nothing at silent', () => {
      const out = sink();
      const log = createLogger({ level: 'silent', destination: out });
      log.fatal('no');
      expect(out.text()).to.equal('');
    });

    it('takes its level from LOG_LEVEL through the configuration', () => {
      for (const level of ['debug', 'error'] as const) {
        const config = loadConfig({ env: { NODE_ENV: 'test', LOG_LEVEL: level } });
        const out = sink();
        const log = createLogger({ level: config.logLevel, destination: out });
        expect(log.level).to.equal(level);
        log.debug('debug line');
        log.info('info line');
        log.error('error line');
        const expected = level === 'debug' ? ['debug line', 'info line', 'error line'] : ['error line'];
        expect(jsonLines(out.text()).map((l) => l.msg)).to.deep.equal(expected);
      }
    });

    it('gives child loggers their bindings, as the runtime does with actor paths', () => {
      const out = sink();
      createLogger({ level: 'info', destination: out }).child({ actor: '/observerio/tcp/conns/conn-1' }).warn('slow reader');
      expect(jsonLines(out.text())[0]).to.include({ actor: '/observerio/tcp/conns/conn-1', msg: 'slow reader' });
    });

    it('writes readable lines, not JSON, on a terminal', () => {
      const out = sink(true);
      createLogger({ level: 'info', destination: out }).child({ actor: '/observerio/store' }).warn({ restarts: 2 }, 'probe failed');
      // Coloured for the terminal; the colour codes are left out of what is checked.
      const text = out.text().replace(/\u001b\[[0-9;]*m/g, '');
      expect(out.text()).to.include('\u001b[');
      expect(() => JSON.parse(text)).to.throw();
      expect(text).to.match(/WARN/);
      expect(text).to.include('probe failed');
      expect(text).to.include('/observerio/store');
      expect(text).to.match(/restarts: 2/);
    });

    it('writes JSON when told to, even on a terminal, and readable lines when told to elsewhere', () => {
      const tty = sink(true);
      createLogger({ level: 'info', destination: tty, pretty: false }).info('as json');
      expect(jsonLines(tty.text())[0]).to.include({ msg: 'as json' });
      const file = sink();
      createLogger({ level: 'info', destination: file, pretty: true }).info('for people');
      expect(file.text()).to.match(/INFO.*for people/);
      // No colour codes where the destination is not a terminal.
      expect(file.text()).to.not.include('\u001b[');
    });
  });
});
