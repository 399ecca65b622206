/**
 * The connect panel's snippets (src/dashboard/snippets.ts) for addresses other than the e2e test's
 * loopback: an advertised name, an IPv6 host; each SDK gets its own transport's address, and the raw
 * protocol lines are ones the daemon's parser accepts with the labels, variables and log they claim.
 */
import { expect } from 'chai';
import { isSdkId, SDK_CHOICES, snippetFor, type SdkId } from '../../../src/dashboard/snippets.js';
import { parseLine } from '../../../src/tcp/protocol.js';
import type { ConnectInfoAnswer } from '../../../src/wire.js';

const info = (host: string, sdkUrl: string): ConnectInfoAnswer => ({ host, tcpPort: 14040, httpPort: 8443, sdkUrl, apiKey: 'AbCdEf012345' });
const ids = SDK_CHOICES.map((c) => c.id);

describe('dashboard snippets', () => {
  it('puts each transport\'s address in its SDK\'s snippet, never the default port', () => {
    for (const i of [info('play.example.com', 'ws://play.example.com:8443/sdk'), info('fd00::7', 'ws://[fd00::7]:8443/sdk')]) {
      const s = Object.fromEntries(ids.map((id) => [id, snippetFor(id, i)])) as Record<SdkId, ReturnType<typeof snippetFor>>;
      expect(s.node.code).to.include(`host: '${i.host}',\n  port: 14040,`);
      expect(s.browser.code).to.include(`url: '${i.sdkUrl}',`).and.not.include('14040');
      expect(s.csharp.code).to.include(`Host = "${i.host}",\n            Port = 14040,`);
      expect(s.raw.code).to.match(new RegExp(`\\| nc ${i.host.replace(/\./g, '\\.')} 14040$`));
      for (const id of ids) {
        expect(s[id].code, id).to.include('AbCdEf012345').and.not.match(/\b4040\b/);
        expect(s[id].note, id).to.include(id === 'browser' ? i.sdkUrl : `${i.host}:14040`);
        expect(s[id].install, id).to.be.a('string').and.not.equal('');
      }
    }
  });

  it('writes raw protocol lines the daemon parses, carrying the labels, variables and log they describe', () => {
    const code = snippetFor('raw', info('127.0.0.1', 'ws://127.0.0.1:8443/sdk')).code;
    const arg = /\(printf '([^']*)'; sleep 60\)/.exec(code)?.[1];
    expect(arg, 'the printf argument').to.be.a('string');
    const lines = arg!.split('\\n').filter((l) => l !== '');
    expect(lines.map(parseLine)).to.deep.equal([
      { kind: 'verify', apiKey: 'AbCdEf012345', deviceId: 'nc-test' },
      { kind: 'labels', apiKey: 'AbCdEf012345', labels: { build: '1.0.0', platform: 'shell' } },
      { kind: 'vars', apiKey: 'AbCdEf012345', vars: [{ name: 'enemy_speed', type: 'float', value: '1.5' }, { name: 'god_mode', type: 'boolean', value: 'false' }] },
      { kind: 'logs', apiKey: 'AbCdEf012345', logs: [{ message: 'hello from nc', level: 'info' }] },
    ]);
  });

  it('knows its SDK ids, and nothing else is one (a stored choice is checked)', () => {
    expect(ids).to.deep.equal(['node', 'browser', 'csharp', 'raw']);
    for (const v of [null, '', 'NODE', '__proto__', 'toString', '<img src=x>', 1]) expect(isSdkId(v), String(v)).to.equal(false);
  });
});
