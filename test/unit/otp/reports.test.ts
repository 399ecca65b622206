/**
 * The runtime's structured reports: every crash and every restart is one log line naming the
 * supervisor, the child, the reason and the restart count (OTP's crash and progress reports).
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { dynamicSupervisor, Runtime, type ChildSpec } from '../../../src/otp/index.js';
import { counter, send, sup } from './helpers.js';

type Line = Record<string, unknown>;

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const reports = (lines: Line[]) =>
  lines
    .filter((l) => l.errorContext === 'child_terminated' || l.errorContext === 'child_restarted')
    .map((l) => ({ kind: l.errorContext, level: l.level, supervisor: l.supervisor, child: l.child, reason: l.reason, restarts: l.restarts }));

describe('otp/reports', () => {
  let rt: Runtime;
  let lines: Line[];
  const start = async (root: ChildSpec): Promise<void> => {
    const cap = capture();
    lines = cap.lines;
    rt = await Runtime.start(root, { logger: cap.logger });
  };
  afterEach(() => rt.stop());

  const settle = () => new Promise((r) => setTimeout(r, 20));

  it('one crash report and one restart report per crash, with the restart count before and after', async () => {
    await start(sup('root', { strategy: 'one_for_one' }, [counter('a', []), counter('b', [])]));
    send(rt, '/root/a', { kind: 'crash', why: 'boom 1' });
    await settle();
    send(rt, '/root/a', { kind: 'crash', why: 'boom 2' });
    await settle();
    expect(reports(lines)).to.deep.equal([
      { kind: 'child_terminated', level: 50, supervisor: '/root', child: '/root/a', reason: 'boom 1', restarts: 0 },
      { kind: 'child_restarted', level: 30, supervisor: '/root', child: '/root/a', reason: 'boom 1', restarts: 1 },
      { kind: 'child_terminated', level: 50, supervisor: '/root', child: '/root/a', reason: 'boom 2', restarts: 1 },
      { kind: 'child_restarted', level: 30, supervisor: '/root', child: '/root/a', reason: 'boom 2', restarts: 2 },
    ]);
    const crash = lines.find((l) => l.errorContext === 'child_terminated')!;
    expect(crash).to.include({ actor: '/root', offender: '/root/a', action: 'restarting it (one_for_one)' });
    expect((crash.err as { message: string }).message).to.equal('boom 1');
  });

  it('one restart report for each sibling a one_for_all restart takes along, saying why', async () => {
    await start(sup('root', { strategy: 'one_for_all' }, [counter('a', []), counter('b', [])]));
    await rt.kill('/root/b', 'drill');
    expect(reports(lines)).to.deep.equal([
      { kind: 'child_terminated', level: 50, supervisor: '/root', child: '/root/b', reason: 'Killed: drill', restarts: 0 },
      { kind: 'child_restarted', level: 30, supervisor: '/root', child: '/root/a', reason: 'one_for_all: sibling b crashed: Killed: drill', restarts: 1 },
      { kind: 'child_restarted', level: 30, supervisor: '/root', child: '/root/b', reason: 'Killed: drill', restarts: 1 },
    ]);
  });

  it("names the dynamic supervisor for its children's crashes and restarts", async () => {
    await start(sup('root', { strategy: 'one_for_one' }, [{ id: 'dyn', start: dynamicSupervisor({ childIntensity: 1, childPeriod: 10_000 }) }]));
    await rt.dynamicSupervisor('/root/dyn').startChild(counter('c-1', []));
    await rt.kill('/root/dyn/c-1', 'first');
    await rt.kill('/root/dyn/c-1', 'second');
    expect(reports(lines)).to.deep.equal([
      { kind: 'child_terminated', level: 50, supervisor: '/root/dyn', child: '/root/dyn/c-1', reason: 'Killed: first', restarts: 0 },
      { kind: 'child_restarted', level: 30, supervisor: '/root/dyn', child: '/root/dyn/c-1', reason: 'Killed: first', restarts: 1 },
      { kind: 'child_terminated', level: 50, supervisor: '/root/dyn', child: '/root/dyn/c-1', reason: 'Killed: second', restarts: 1 },
    ]);
    expect(lines.at(-1)!.action).to.match(/^stopped: its restart intensity \(1 in 10000 ms\) was exceeded/);
  });

  it('a supervisor giving up is its own report, and its restart one level up is reported there', async () => {
    await start(sup('root', { strategy: 'one_for_one', intensity: 5 }, [sup('mid', { strategy: 'one_for_one', intensity: 1, period: 10_000 }, [counter('w', [])])]));
    await rt.kill('/root/mid/w');
    await rt.kill('/root/mid/w');
    const shutdown = lines.filter((l) => l.errorContext === 'shutdown');
    expect(shutdown.map((l) => l.supervisor)).to.deep.equal(['/root/mid']);
    expect(reports(lines).slice(-2)).to.deep.equal([
      { kind: 'child_terminated', level: 50, supervisor: '/root', child: '/root/mid', reason: 'reached_max_restart_intensity (1 in 10000 ms); last: Killed: killed by operator', restarts: 0 },
      { kind: 'child_restarted', level: 30, supervisor: '/root', child: '/root/mid', reason: 'reached_max_restart_intensity (1 in 10000 ms); last: Killed: killed by operator', restarts: 1 },
    ]);
  });
});
