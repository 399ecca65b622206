/**
 * `GET /api/devices` → {devices: DeviceSummary[]}: the signed-in user's devices cluster-wide (online
 * on any node, or seen within the remember window), newest seen first, each with the strategy it runs
 * and how many changes wait for it; `GET /api/devices/:deviceId` → the device with each variable's
 * reported, override and effective value and what is pending for it; 404 when unknown (DESIGN.md §8).
 * The per-socket view of this node lives on in the WebSocket's `device` events.
 */
import { ObserverioError } from '../../errors.js';
import { DEVICE_ID_RE } from '../../model.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import type { DeviceAnswer, DeviceListAnswer } from '../../wire.js';
import { noQuery } from './vars.js';

export const deviceRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/api/devices',
    route(ctx, 'get_devices', async (reply, info) => {
      const session = await requireSession(ctx, info);
      noQuery(info.query);
      reply.json(200, { devices: await ctx.clients.variables.devices(session.apiKey) } satisfies DeviceListAnswer);
    }),
  );

  app.get(
    '/api/devices/:deviceId',
    route(
      ctx,
      'get_device',
      async (reply, info) => {
        const session = await requireSession(ctx, info);
        noQuery(info.query);
        const id = info.params[0] ?? '';
        if (!DEVICE_ID_RE.test(id)) throw new ObserverioError('bad_request', 'device id must be 1-64 characters of [A-Za-z0-9._-]');
        reply.json(200, (await ctx.clients.variables.device(session.apiKey, id)) satisfies DeviceAnswer);
      },
      1,
    ),
  );
};
