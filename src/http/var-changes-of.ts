/**
 * The daemon's one VarChanges (REST and WebSocket share it, and with it the node's single ack
 * subscription), created on first use per HTTP context so daemons in one process stay apart.
 */
import { VarChanges } from '../clients/var-changes.js';
import type { HttpContext } from './context.js';

const instances = new WeakMap<HttpContext, VarChanges>();

export function varChangesOf(ctx: HttpContext): VarChanges {
  let v = instances.get(ctx);
  if (!v) {
    v = new VarChanges({
      store: ctx.store,
      metrics: ctx.metrics,
      pubsub: ctx.pubsub,
      gateway: ctx.gateway,
      sockets: ctx.sockets,
      clients: ctx.clients,
      logger: ctx.logger.child({ component: 'var-changes' }),
      nodeId: ctx.nodeId,
    });
    instances.set(ctx, v);
  }
  return v;
}
