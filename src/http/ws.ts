/**
 * The dashboard's live channel, `GET /ws?token=<session token>` on uWebSockets.js. Authenticated at
 * upgrade (401 before upgrading otherwise). One uWS topic per API key: this node subscribes to the
 * key's pubsub channels (`vars`, `logs`, `devices`) while at least one of that key's dashboard sockets is open
 * here and fans each event out with `app.publish`, so a socket only ever sees its own key's events.
 * The only client frame is `{"type":"set_var","name","value","varType"?,"target"?,"id"?}`, which does what
 * `PUT /api/vars/:name` does and is answered `{"type":"var_delivery",...}` or `{"type":"error",...}`.
 * Every frame's shape is in wire.ts. A `delivery` event also goes out as `var_delivery`, its tag before
 * that one named only the set_var answer, for clients written against the old tag. §8's events
 * (`overrides`, `strategies`, `history`) travel on the key's `vars` channel; `device_state` comes from
 * this node's presence watch of the keys with a socket here (clients/presence-watch.ts).
 */
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ERRORS, ObserverioError, type ErrorCode } from '../errors.js';
import { channels, type OtherValue, type OwnText, type PubSub, type Unsubscribe } from '../pubsub/pubsub.js';
import { cachedSession, sessionOf, TOKEN_RE } from './auth.js';
import type { HttpContext, RouteModule } from './context.js';
import { WS_CLOSE_SESSION_ENDED } from './dashboard-sockets.js';
import { acceptableVarType, onlyKeys, varTypeSchema, varValueSchema } from './api/vars.js';
import { wireValue, type Session } from '../model.js';
import { Reply, requestInfo } from './respond.js';
import type { LegacyDeliveryEvent, SetVarAnswer, SetVarFrame, WsServerFrame } from '../wire.js';
import { EVENTS_HEAD, EVENTS_LIST, type DashboardEvents } from '../gateway/gateway.js';

/** What each socket carries from its upgrade. */
export interface WsUser {
  apiKey: string;
  email: string;
  token: string;
  expiresAt: number;
  remoteAddress: string;
  closed: boolean;
  expiryTimer: NodeJS.Timeout | null;
  feed: FeedHandle | null;
  /** Ends this socket's share of the key's presence watch (clients/presence-watch.ts). */
  unwatch: (() => void) | null;
  /**
   * set_var frames are pipelined: each one's session check runs after the previous one's, and its
   * change joins its key's queue as that check passes, so a socket's changes are committed and reach
   * devices in the order sent while several are in flight; `answered` sends the answers in that order.
   * A frame for a variable that one of the socket's frames still in flight sets waits for that one's
   * line to be out first (`lastByName`: every node acked it, VarChanges.act's `sent`; no longer its
   * whole answer, which also waits for the delivered count's write): each value a socket sets reaches
   * the devices as its own line rather than collapsed into the next one.
   */
  checked: Promise<void>;
  answered: Promise<void>;
  lastByName: Map<string, Promise<unknown>>;
  pending: number;
}

/** Subprotocol a browser may offer next to `bearer.<token>`, echoed back when offered. */
export const WS_PROTOCOL = 'observerio';
const BEARER_PROTOCOL_PREFIX = 'bearer.';
/** set_var frames a socket may have waiting; past this it is told to slow down. */
const MAX_PENDING_FRAMES = 64;
/** setTimeout's ceiling; longer sessions are re-checked at that point instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const idSchema = z.union([z.string().max(64), z.number().int().safe()]);

export const clientFrameSchema = z
  .object({
    type: z.literal('set_var'),
    name: z.string({ error: 'name must be a string' }),
    value: varValueSchema,
    varType: varTypeSchema.optional(),
    /** §8: who the change is for, as `PUT /api/vars/:name`'s body (target.ts names its problems). */
    target: z.unknown().optional(),
    /** Echoed in the answer so a client can match it to its request. */
    id: idSchema.optional(),
  })
  .strict();

type ClientFrame = z.infer<typeof clientFrameSchema>;

const FRAME_KEYS: ReadonlySet<string> = new Set(['type', 'name', 'value', 'varType', 'target', 'id']);

/**
 * A set_var frame clientFrameSchema accepts, as it would give it, without zod (its parse of every
 * frame showed in the bulk set_var profile, as the PUT body's did); null for anything else, which the
 * schema then judges, so every refusal keeps its message.
 */
export function acceptSetVarFrame(v: unknown): ClientFrame | null {
  const o = onlyKeys(v, FRAME_KEYS);
  if (!o || o.type !== 'set_var' || typeof o.name !== 'string' || !('value' in o) || wireValue(o.value) === null) return null;
  const out: ClientFrame = { type: 'set_var', name: o.name, value: o.value as SetVarFrame['value'] };
  if ('varType' in o) {
    if (!acceptableVarType(o.varType)) return null;
    out.varType = o.varType;
  }
  if ('target' in o) out.target = o.target;
  if ('id' in o) {
    const id = o.id;
    if (!((typeof id === 'string' && id.length <= 64) || (typeof id === 'number' && Number.isSafeInteger(id)))) return null;
    out.id = id;
  }
  return out;
}

export const topicOf = (apiKey: string): string => `key:${apiKey}`;

/** One socket's share of its key's feed; `release` is idempotent. */
export interface FeedHandle {
  /** Resolves once the key's events flow to this node. */
  ready: Promise<void>;
  release(): void;
}

/**
 * Reference-counted pubsub subscriptions per API key: subscribed when the key's first socket opens on
 * this node, unsubscribed when its last one closes. A handler only forwards while its feed is the
 * key's current one, so a quick close-then-reopen never delivers an event twice, and a handle only
 * ever releases the feed it acquired (a failed feed is replaced, not shared).
 */
export class KeyFeeds {
  private readonly feeds = new Map<string, Feed>();

  constructor(
    private readonly pubsub: PubSub,
    /** Each message of the key's channels: this node's own as its text, another node's as its value. */
    private readonly forward: (apiKey: string, message: OwnText | OtherValue) => void,
    private readonly logger: Logger,
    /**
     * Run once the key's channels are subscribed, before the feed is ready: tells every node the key's
     * logs are watched (Gateway.watchLogs), so none keeps them muted from this feed (gateway/log-watch.ts).
     */
    private readonly watching: (apiKey: string) => Promise<void> = async () => undefined,
  ) {}

  acquire(apiKey: string): FeedHandle {
    let feed = this.feeds.get(apiKey);
    if (!feed) {
      const f: Feed = { count: 0, ready: Promise.resolve([]) };
      f.ready = this.subscribe(apiKey, f);
      // A failed subscription is forgotten so the next socket of the key tries again.
      f.ready.catch(() => {
        if (this.feeds.get(apiKey) === f) this.feeds.delete(apiKey);
      });
      this.feeds.set(apiKey, f);
      feed = f;
    }
    const mine = feed;
    mine.count += 1;
    let released = false;
    return {
      ready: mine.ready.then(() => undefined),
      release: () => {
        if (released) return;
        released = true;
        mine.count -= 1;
        if (mine.count > 0 || this.feeds.get(apiKey) !== mine) return;
        this.feeds.delete(apiKey);
        mine.ready
          .then(
            (unsubs) => Promise.all(unsubs.map((u) => u())),
            () => undefined,
          )
          .catch((err: unknown) => this.logger.warn({ err, apiKey }, 'cannot unsubscribe a dashboard feed'));
      },
    };
  }

  /** Keys with an open dashboard on this node. */
  get size(): number {
    return this.feeds.size;
  }

  private async subscribe(apiKey: string, feed: Feed): Promise<Unsubscribe[]> {
    const handler = (message: OwnText | OtherValue): void => {
      if (this.feeds.get(apiKey) === feed) this.forward(apiKey, message);
    };
    const results = await Promise.allSettled([channels.vars(apiKey), channels.logs(apiKey), channels.devices(apiKey)].map((ch) => this.pubsub.subscribeText(ch, handler)));
    const unsubs = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(unsubs.map((u) => u()));
      throw failed.reason;
    }
    try {
      await this.watching(apiKey);
    } catch (err) {
      await Promise.allSettled(unsubs.map((u) => u()));
      throw err;
    }
    return unsubs;
  }
}

interface Feed {
  count: number;
  ready: Promise<Unsubscribe[]>;
}

function endQuietly(ws: WebSocket<WsUser>, code: number, reason: string): void {
  if (ws.getUserData().closed) return;
  try {
    ws.end(code, reason);
  } catch {
    // Closed by the peer in the meantime.
  }
}

/** Sends a JSON frame unless the socket is gone; a frame dropped for backpressure ends the socket. */
function sendJson(ws: WebSocket<WsUser>, frame: WsServerFrame): void {
  if (ws.getUserData().closed) return;
  // 0 = queued behind backpressure (drains by itself), 1 = sent, 2 = dropped: the dashboard would
  // silently miss an answer, so it is closed and reconnects to a fresh snapshot.
  // Corked: answers are sent from promise callbacks, outside uWS's own corked handlers.
  let status = 1;
  ws.cork(() => {
    status = ws.send(JSON.stringify(frame), false);
  });
  if (status === 2) endQuietly(ws, 1013, 'too far behind; reconnect');
}

function sendError(ws: WebSocket<WsUser>, code: ErrorCode, message: string, id?: string | number): void {
  sendJson(ws, id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
}

/** The token from `?token=` or, for clients that prefer headers, a `bearer.<token>` subprotocol. */
function tokenOf(query: string, protocols: string): { token: string | null; protocol: string } {
  const offered = protocols
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const fromQuery = new URLSearchParams(query).get('token');
  const fromProtocol = offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX))?.slice(BEARER_PROTOCOL_PREFIX.length) ?? null;
  // The bearer entry is never echoed: the answer must name a protocol the client offered, and the
  // token should not travel back in a response header.
  return { token: fromQuery ?? fromProtocol, protocol: offered.includes(WS_PROTOCOL) ? WS_PROTOCOL : '' };
}

/** More events than one batch of changes makes in one message is not a message of ours. */
const MAX_EVENTS_PER_MESSAGE = 10_000;

/** Gateway.publishMany's message; its events are each forwarded as one frame. */
export function isEventBatch(m: unknown): m is DashboardEvents {
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'events') return false;
  const list = (m as { events?: unknown }).events;
  return Array.isArray(list) && list.length <= MAX_EVENTS_PER_MESSAGE;
}

/** A key's event to its sockets here; a `delivery` goes out a second time under its old tag. */
function fanOut(app: TemplatedApp, topic: string, event: unknown): void {
  app.publish(topic, JSON.stringify(event), false);
  if (typeof event === 'object' && event !== null && (event as { type?: unknown }).type === 'delivery') {
    const legacy: LegacyDeliveryEvent = { ...(event as Omit<LegacyDeliveryEvent, 'type'>), type: 'var_delivery' };
    app.publish(topic, JSON.stringify(legacy), false);
  }
}

const TYPE_HEAD = '{"type":"';
const DELIVERY_HEAD = '{"type":"delivery"';
const LEGACY_HEAD = '{"type":"var_delivery"';

/**
 * The type of an event from its JSON text, when the text begins with it as JSON.stringify writes an
 * event whose first key is `type` (every event this daemon makes); null otherwise.
 */
export function frameType(text: string): string | null {
  if (!text.startsWith(TYPE_HEAD)) return null;
  const end = text.indexOf('"', TYPE_HEAD.length);
  if (end < 0) return null;
  const type = text.slice(TYPE_HEAD.length, end);
  // An escape inside: the quote found may be an escaped one; not ours to guess.
  return type.includes('\\') ? null : type;
}

/**
 * The frames of a DashboardEvents text as Gateway.publishMany lays it out (eventsText), each the
 * text of one event, in order; null for any other text. Only this node's own texts come here.
 */
export function eventFrames(text: string): string[] | null {
  if (!text.startsWith(EVENTS_HEAD)) return null;
  const close = text.indexOf(']', EVENTS_HEAD.length);
  if (close < 0 || !text.startsWith(EVENTS_LIST, close + 1)) return null;
  const sizes = close === EVENTS_HEAD.length ? [] : text.slice(EVENTS_HEAD.length, close).split(',');
  if (sizes.length > MAX_EVENTS_PER_MESSAGE) return null;
  const frames: string[] = new Array(sizes.length);
  let at = close + 1 + EVENTS_LIST.length;
  for (let i = 0; i < sizes.length; i++) {
    const n = Number(sizes[i]);
    if (!Number.isSafeInteger(n) || n < 2) return null;
    const frame = text.slice(at, at + n);
    at += n;
    // Each frame an object followed by its separator: a layout that does not add up is not ours.
    if (frame.length !== n || frame[0] !== '{' || frame[n - 1] !== '}' || text[at] !== (i === sizes.length - 1 ? ']' : ',')) return null;
    frames[i] = frame;
    at += 1;
  }
  if (sizes.length === 0) at += 1;
  return at === text.length - 1 && text[at] === '}' ? frames : null;
}

/**
 * fanOut of an event given as its JSON text: the text itself is the frame (encoded once, by the
 * publisher), the legacy `var_delivery` frame the same text under the old tag (JSON.stringify of
 * `{...event, type}` keeps `type` where it was: first). `type` is frameType's of the text.
 */
function fanOutText(app: TemplatedApp, topic: string, frame: string, type: string): void {
  app.publish(topic, frame, false);
  if (type === 'delivery') app.publish(topic, LEGACY_HEAD + frame.slice(DELIVERY_HEAD.length), false);
}

export const wsRoutes: RouteModule = (app: TemplatedApp, ctx: HttpContext) => {
  const { metrics, logger } = ctx;
  const log = logger.child({ component: 'ws' });
  // device_state comes from this node's own look at the store, not from pubsub: see presence-watch.ts.
  const presence = ctx.clients.presenceWatch((apiKey, event) => fanOut(app, topicOf(apiKey), event));
  /**
   * This node's own message as text: each event's frame is the publisher's text, cut out of a batch
   * or taken whole, never decoded and encoded again per event (a thousand-override list is 120 kB).
   * False for a text not laid out as expected (then it is decoded, as another node's message is).
   */
  const forwardText = (apiKey: string, text: string): boolean => {
    const topic = topicOf(apiKey);
    const frames = eventFrames(text);
    if (frames) {
      const types = frames.map(frameType);
      if (types.some((t) => t === null)) return false;
      frames.forEach((f, i) => fanOutText(app, topic, f, types[i] as string));
      if (types.includes('device')) presence.nudge(apiKey);
      return true;
    }
    const type = frameType(text);
    if (type === null || type === 'events') return false;
    fanOutText(app, topic, text, type);
    if (type === 'device') presence.nudge(apiKey);
    return true;
  };
  const feeds = new KeyFeeds(
    ctx.pubsub,
    (apiKey, message) => {
      if (message.own && forwardText(apiKey, message.text)) return;
      let event: unknown;
      if (message.own)
        try {
          event = JSON.parse(message.text);
        } catch {
          return;
        }
      else event = message.value;
      // Events published together (Gateway.publishMany) go out as the frames they are, in order.
      if (isEventBatch(event)) {
        for (const e of event.events) fanOut(app, topicOf(apiKey), e);
        // The device events of a connect storm come batched (tcp/device-events.ts).
        if (event.events.some((e) => e.type === 'device')) presence.nudge(apiKey);
        return;
      }
      fanOut(app, topicOf(apiKey), event);
      // A socket of the key came or went on some node: its device's state is worth a look now.
      if (typeof event === 'object' && event !== null && (event as { type?: unknown }).type === 'device') presence.nudge(apiKey);
    },
    log,
    (apiKey) => ctx.gateway.watchLogs(apiKey),
  );
  const open = ctx.dashboardSockets;
  const changes = ctx.clients;

  const armExpiry = (ws: WebSocket<WsUser>): void => {
    const user = ws.getUserData();
    const left = user.expiresAt - Date.now();
    user.expiryTimer = setTimeout(
      () => {
        user.expiryTimer = null;
        if (left > MAX_TIMER_MS) armExpiry(ws);
        else endQuietly(ws, WS_CLOSE_SESSION_ENDED, 'session expired');
      },
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    user.expiryTimer.unref();
  };

  /** What a frame's answer will be: sent once the answers of the frames before it are. */
  type Outcome = { frame: WsServerFrame; endSession: boolean };

  const errorOutcome = (err: unknown, id: string | number | undefined): Outcome => {
    if (err instanceof ObserverioError) return { frame: id === undefined ? { type: 'error', code: err.code, message: err.message } : { type: 'error', code: err.code, message: err.message, id }, endSession: false };
    log.error({ err }, 'set_var failed');
    const message = ERRORS.internal.message;
    return { frame: id === undefined ? { type: 'error', code: 'internal', message } : { type: 'error', code: 'internal', message, id }, endSession: false };
  };

  /**
   * One frame: its session checked after the previous frame's (signed out on another node, or
   * expired: this socket may no longer steer devices), then its change started at once, in order.
   */
  const setVar = (ws: WebSocket<WsUser>, frame: SetVarFrame): void => {
    const user = ws.getUserData();
    let started!: (p: Promise<Outcome>) => void;
    const outcome = new Promise<Promise<Outcome>>((resolve) => (started = resolve)).then((p) => p);
    // Its line is out (or it failed, or was never started): what a later frame of the name waits for.
    let markSent!: () => void;
    const sent = new Promise<void>((resolve) => (markSent = resolve));
    void outcome.then(markSent);
    const sameName = user.lastByName.get(frame.name);
    user.lastByName.set(frame.name, sent);
    void sent.then(() => {
      if (user.lastByName.get(frame.name) === sent) user.lastByName.delete(frame.name);
    });
    // Outcomes never reject, so neither does this chain.
    user.checked = user.checked
      .then(() => sameName)
      .then(() => sessionOf(ctx, user.token))
      .then(
        () => {
          // Called as the check passes: the change joins its key's queue now, after the frames before it.
          started(
            changes.variables.setVar(user.apiKey, user.email, { name: frame.name, value: frame.value, type: frame.varType, target: frame.target }, { sent: markSent }).then(
              (r): Outcome => ({ frame: { type: 'var_delivery', ...(frame.id === undefined ? {} : { id: frame.id }), name: r.var.name, ...r } satisfies SetVarAnswer, endSession: false }),
              (err: unknown) => errorOutcome(err, frame.id),
            ),
          );
        },
        (err: unknown) => {
          const o = errorOutcome(err, frame.id);
          o.endSession = err instanceof ObserverioError && err.code === 'unauthorized';
          started(Promise.resolve(o));
        },
      );
    user.answered = Promise.all([user.answered, outcome])
      .then(([, o]) => {
        sendJson(ws, o.frame);
        if (o.endSession) endQuietly(ws, WS_CLOSE_SESSION_ENDED, 'session ended');
      })
      .catch((err: unknown) => log.error({ err }, 'set_var answer failed'))
      .finally(() => (user.pending -= 1));
  };

  app.ws<WsUser>('/ws', {
    maxPayloadLength: ctx.config.http.wsMaxPayloadBytes,
    maxBackpressure: ctx.config.http.wsMaxBackpressureBytes,
    // A dashboard that cannot keep up is closed (it reconnects and re-reads its snapshot) rather
    // than silently missing events.
    closeOnBackpressureLimit: 1,
    idleTimeout: ctx.config.http.wsIdleTimeoutS,
    sendPingsAutomatically: true,

    upgrade: (res, req, context) => {
      const info = requestInfo(res, req);
      const reply = new Reply(res);
      const key = info.headers['sec-websocket-key'] ?? '';
      const extensions = info.headers['sec-websocket-extensions'] ?? '';
      const { token, protocol } = tokenOf(info.query, info.headers['sec-websocket-protocol'] ?? '');
      const refuse = (code: ErrorCode, message: string): void => {
        reply.error(code, message);
        metrics.httpRequests.inc({ route: 'ws_upgrade', status: String(reply.status || 499) });
      };
      if (!token || !TOKEN_RE.test(token)) return refuse('unauthorized', token ? 'invalid or expired session token' : 'missing ?token=<session token>');
      const upgrade = (session: Session, later: boolean): void => {
        const user: WsUser = { apiKey: session.apiKey, email: session.email, token, expiresAt: session.expiresAt, remoteAddress: info.remoteAddress, closed: false, expiryTimer: null, feed: null, unwatch: null, checked: Promise.resolve(), answered: Promise.resolve(), lastByName: new Map(), pending: 0 };
        reply.done = true;
        if (later) res.cork(() => res.upgrade(user, key, protocol, extensions, context));
        else res.upgrade(user, key, protocol, extensions, context);
        metrics.httpRequests.inc({ route: 'ws_upgrade', status: '101' });
      };
      // A session this node holds (read in the last http.sessionCacheMs, or created here at sign-in)
      // upgrades at once, inside this handler: uWebSockets.js v20.30 can close a socket upgraded later
      // (corked, after an await) right after its open, with 1006 (uNetworking/uWebSockets PR #1929,
      // fixed after the only build installable here). The synchronous path is not affected.
      const cached = cachedSession(ctx, token);
      if (cached) return upgrade(cached, false);
      sessionOf(ctx, token).then(
        (session) => {
          if (!reply.aborted) upgrade(session, true);
        },
        (err: unknown) => {
          if (err instanceof ObserverioError) refuse(err.code, err.message);
          else refuse('internal', ERRORS.internal.message);
        },
      );
    },

    open: (ws) => {
      const user = ws.getUserData();
      open.add(user.token, ws);
      metrics.wsClients.inc();
      ws.subscribe(topicOf(user.apiKey));
      armExpiry(ws);
      // Events published before `ready` may be missed; the dashboard reads its REST snapshot after it.
      user.feed = feeds.acquire(user.apiKey);
      user.unwatch = presence.watch(user.apiKey);
      user.feed.ready.then(
        () => sendJson(ws, { type: 'ready', apiKey: user.apiKey, email: user.email }),
        (err: unknown) => {
          log.error({ err, apiKey: user.apiKey }, 'cannot subscribe a dashboard to its key');
          endQuietly(ws, 1011, 'live events unavailable; retry');
        },
      );
    },

    message: (ws, message, isBinary) => {
      // The ArrayBuffer dies when this callback returns: decode it now.
      const text = Buffer.from(message).toString('utf8');
      if (isBinary) return sendError(ws, 'bad_request', 'frames must be text (JSON)');
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return sendError(ws, 'bad_json', 'frame is not valid JSON');
      }
      const idRaw = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
      const id = idSchema.safeParse(idRaw).success ? (idRaw as string | number) : undefined;
      const type = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { type?: unknown }).type : undefined;
      if (type !== 'set_var') return sendError(ws, 'bad_request', typeof type === 'string' ? `unknown frame type ${JSON.stringify(type.slice(0, 32))}; expected set_var` : 'frame must be a JSON object with a "type"', id);
      const fast = acceptSetVarFrame(value);
      const parsed = fast ? { success: true as const, data: fast } : clientFrameSchema.safeParse(value);
      if (!parsed.success) {
        const msg = parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.length ? i.path.join('.') : 'frame'}: ${i.message}`)
          .join('; ');
        return sendError(ws, 'bad_request', msg, id);
      }
      const user = ws.getUserData();
      if (user.pending >= MAX_PENDING_FRAMES) return sendError(ws, 'too_many_requests', `more than ${MAX_PENDING_FRAMES} set_var frames waiting; slow down`, id);
      user.pending += 1;
      setVar(ws, parsed.data as SetVarFrame);
    },

    close: (ws) => {
      const user = ws.getUserData();
      user.closed = true;
      if (user.expiryTimer) clearTimeout(user.expiryTimer);
      open.remove(user.token, ws);
      metrics.wsClients.dec();
      user.feed?.release();
      user.unwatch?.();
    },
  });
};
