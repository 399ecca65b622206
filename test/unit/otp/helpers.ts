import { pino } from 'pino';
import { Runtime, supervisor, worker, type ActorContext, type ChildSpec, type SupervisorFlags } from '../../../src/otp/index.js';

export const silent = pino({ level: 'silent' });

export type Msg = { kind: 'add'; n: number } | { kind: 'crash'; why: string } | { kind: 'get'; reply: (v: number) => void } | { kind: 'slow'; ms: number } | { kind: 'exit' };

/** A counter worker that records its lifecycle in `log`, used by most runtime tests. */
export function counter(name: string, log: string[], opts: { failInit?: () => boolean; restart?: ChildSpec['restart'] } = {}): ChildSpec {
  return {
    id: name,
    restart: opts.restart,
    start: worker<{ n: number }, Msg>({
      init: () => {
        if (opts.failInit?.()) throw new Error(`${name} cannot start`);
        log.push(`init ${name}`);
        return { n: 0 };
      },
      handle: async (state, msg, ctx: ActorContext<Msg>) => {
        switch (msg.kind) {
          case 'add':
            return { n: state.n + msg.n };
          case 'crash':
            throw new Error(msg.why);
          case 'get':
            msg.reply(state.n);
            return;
          case 'slow':
            await new Promise((r) => setTimeout(r, msg.ms));
            return;
          case 'exit':
            ctx.stop('done');
            return;
        }
      },
      terminate: (_s, reason) => void log.push(`terminate ${name} ${reason}`),
      info: (s) => ({ n: s.n }),
    }),
  };
}

export function sup(id: string, flags: SupervisorFlags, children: ChildSpec[]): ChildSpec {
  return { id, start: supervisor(flags, children) };
}

export async function startTree(root: ChildSpec, onRootFailure?: (r: string) => void): Promise<Runtime> {
  return Runtime.start(root, { logger: silent, onRootFailure });
}

export function get(rt: Runtime, path: string): Promise<number> {
  const ref = rt.whereis<Msg>(path);
  if (!ref) throw new Error(`no ${path}`);
  return ref.call<number>((reply) => ({ kind: 'get', reply }), 1000);
}

export function send(rt: Runtime, path: string, msg: Msg): void {
  const ref = rt.whereis<Msg>(path);
  if (!ref) throw new Error(`no ${path}`);
  ref.send(msg);
}
