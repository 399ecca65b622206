/** POST /api/users {email, password} → 201 {apiKey}; 409 when the email is taken; 400 when invalid. */
import { z } from 'zod';
import { route, type RouteModule } from '../context.js';
import { readJson } from '../respond.js';
import type { CreateUserAnswer, Credentials } from '../../wire.js';

export const credentialsSchema = z
  .object({
    email: z
      .string({ error: 'email must be a string' })
      .trim()
      .min(3, 'email is too short')
      .max(254, 'email is longer than 254 characters')
      .regex(/^[^\s@]+@[^\s@]+$/, 'email must look like name@example.com'),
    password: z.string({ error: 'password must be a string' }).min(8, 'password must be at least 8 characters').max(256, 'password is longer than 256 characters'),
  })
  .strict();

export const userRoutes: RouteModule = (app, ctx) => {
  app.post(
    '/api/users',
    route(ctx, 'create_user', async (reply, info) => {
      const body: Credentials = await readJson(reply, info, ctx.config.http.maxBodyBytes, credentialsSchema);
      const user = await ctx.store.createUser(body.email, body.password);
      ctx.logger.info({ email: user.email }, 'user registered');
      reply.json(201, { apiKey: user.apiKey, email: user.email } satisfies CreateUserAnswer);
    }),
  );
};
