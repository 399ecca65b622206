import { expect } from 'chai';
import { DashboardSockets, WS_CLOSE_SESSION_ENDED, type DashboardSocket } from '../../../src/http/dashboard-sockets.js';

/** A socket whose end() removes it from the registry, as uWS's close handler does in ws.ts. */
function socket(reg: DashboardSockets, token: string, ended: Array<[string, number | undefined]>, name: string): DashboardSocket {
  const ws: DashboardSocket = {
    end(code) {
      ended.push([name, code]);
      reg.remove(token, ws);
    },
  };
  reg.add(token, ws);
  return ws;
}

describe('DashboardSockets', () => {
  it('closes only the signed-out session’s sockets, with the session-ended code', () => {
    const reg = new DashboardSockets();
    const ended: Array<[string, number | undefined]> = [];
    socket(reg, 'tok-a', ended, 'a1');
    socket(reg, 'tok-a', ended, 'a2');
    socket(reg, 'tok-b', ended, 'b1');
    expect(reg.size).to.equal(3);
    reg.closeSession('tok-a');
    expect(ended).to.deep.equal([
      ['a1', WS_CLOSE_SESSION_ENDED],
      ['a2', WS_CLOSE_SESSION_ENDED],
    ]);
    expect(reg.size).to.equal(1);
    reg.closeSession('tok-unknown');
    expect(reg.size).to.equal(1);
  });

  it('closes every socket at shutdown, even one whose end() throws', () => {
    const reg = new DashboardSockets();
    const ended: Array<[string, number | undefined]> = [];
    reg.add('tok-x', {
      end() {
        throw new Error('already closed');
      },
    });
    socket(reg, 'tok-y', ended, 'y1');
    reg.closeAll(1001, 'server shutting down');
    expect(ended).to.deep.equal([['y1', 1001]]);
    expect(reg.size).to.equal(0);
  });

  it('counts a socket once and ignores removing one it does not hold', () => {
    const reg = new DashboardSockets();
    const ws: DashboardSocket = { end: () => undefined };
    reg.add('t', ws);
    reg.add('t', ws);
    reg.remove('other', ws);
    expect(reg.size).to.equal(1);
    reg.remove('t', ws);
    reg.remove('t', ws);
    expect(reg.size).to.equal(0);
  });
});

describe('DashboardSockets: a socket opening just after its session ended', () => {
  it('is closed with the session-ended code right after its open handler, not inside it', async () => {
    const reg = new DashboardSockets();
    const ended: Array<[string, number | undefined]> = [];
    reg.closeSession('tok-a');
    socket(reg, 'tok-a', ended, 'late');
    socket(reg, 'tok-b', ended, 'other');
    expect(ended).to.deep.equal([]);
    await new Promise((r) => setImmediate(r));
    expect(ended).to.deep.equal([['late', WS_CLOSE_SESSION_ENDED]]);
    expect(reg.size).to.equal(1);
  });

  it('forgets an ended token after endedMemoryMs', async () => {
    let now = 1000;
    const reg = new DashboardSockets({ endedMemoryMs: 500, now: () => now });
    const ended: Array<[string, number | undefined]> = [];
    reg.closeSession('tok-a');
    now += 501;
    socket(reg, 'tok-a', ended, 'later');
    await new Promise((r) => setImmediate(r));
    expect(ended).to.deep.equal([]);
  });

  it('remembers at most endedMax tokens, forgetting the oldest first', async () => {
    const reg = new DashboardSockets({ endedMax: 100 });
    for (let i = 0; i < 10_000; i++) reg.closeSession(`tok-${i}`);
    expect(reg.endedSize).to.equal(100);
    const ended: Array<[string, number | undefined]> = [];
    socket(reg, 'tok-0', ended, 'forgotten');
    socket(reg, 'tok-9999', ended, 'remembered');
    await new Promise((r) => setImmediate(r));
    expect(ended).to.deep.equal([['remembered', WS_CLOSE_SESSION_ENDED]]);
  });
});
