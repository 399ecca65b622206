/**
 * `GET /api/devices` → {devices: [{id, deviceId, remoteAddress, connectedAt, lastLineAt, linesIn, node}]}:
 * the signed-in user's verified device connections on this node, oldest connection first. Devices on other nodes
 * show up live through the WebSocket's `device` events.
 */
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import type { Device, DevicesAnswer } from '../../wire.js';

export const deviceRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/api/devices',
    route(ctx, 'get_devices', async (reply, info) => {
      const session = await requireSession(ctx, info);
      const devices = ctx.deviceConns
        .lookup(session.apiKey)
        .map(({ value }) => {
          const d = value.device();
          return { id: d.id, deviceId: d.deviceId, remoteAddress: d.remoteAddress, connectedAt: d.connectedAt, lastLineAt: d.lastLineAt, linesIn: d.linesIn, node: d.node } satisfies Device;
        })
        .sort((a, b) => a.connectedAt - b.connectedAt || a.id.localeCompare(b.id, 'en', { numeric: true }));
      reply.json(200, { devices } satisfies DevicesAnswer);
    }),
  );
};
