/**
 * The Store contract: users, API keys, dashboard sessions, failed sign-ins, variables and the outbox
 * of variable changes waiting for a device. Implemented in memory (embedded default) and on Redis; one contract
 * suite (test/contracts/store.contract.ts) runs against both.
 */
import type { BackendHealth, Session, User, Var } from '../model.js';
import type { Labels } from '../variables/labels.js';
import type { LoginOutcome, LoginRule } from './login-limiter.js';

export interface Store {
  readonly kind: 'memory' | 'redis';
  start(): Promise<void>;
  /** Persists what needs persisting (memory: a final snapshot) and releases connections. */
  stop(): Promise<void>;
  health(): Promise<BackendHealth>;

  /** Registers a user; throws ObserverioError('email_taken') when the email exists (case-insensitive). */
  createUser(email: string, password: string): Promise<User>;
  /** The user when email and password match, else null (same answer for unknown email and wrong password). */
  authenticate(email: string, password: string): Promise<User | null>;
  /** True when the key belongs to a registered user. */
  verifyApiKey(apiKey: string): Promise<boolean>;

  createSession(user: User, ttlMs: number): Promise<Session>;
  /** The session when the token exists and has not expired, else null. */
  getSession(token: string): Promise<Session | null>;
  deleteSession(token: string): Promise<void>;

  /**
   * Starts a sign-in attempt for `key` (an emailKey) under `rule` (login-limiter.ts): null when it may
   * go ahead, to be ended with loginEnd, else the milliseconds until it may. Shared by every node on
   * Redis; the record of an email lapses by itself once nothing in it counts any more.
   */
  loginBegin(key: string, rule: LoginRule): Promise<number | null>;
  /** Ends an attempt loginBegin let go ahead: a failure counts, a success clears the email's record. */
  loginEnd(key: string, outcome: LoginOutcome, rule: LoginRule): Promise<void>;

  /** Writes variables into `<apiKey>:vs` (fields `<name>:type`, `<name>:value`, first-seen order). */
  setVars(apiKey: string, vars: readonly Var[]): Promise<void>;
  /** The key's variables in first-seen order. */
  getVars(apiKey: string): Promise<Var[]>;
  /** The types of these variables in `<apiKey>:vs`, as getVars gives them (a name not there is absent): one variable's type without reading them all. */
  getVarTypes(apiKey: string, names: readonly string[]): Promise<Map<string, string>>;
  /**
   * Removes one variable from `<apiKey>:vs` (both its fields, and its place in the first-seen order:
   * reported again, it goes to the end). True when it existed.
   */
  deleteVar(apiKey: string, name: string): Promise<boolean>;

  /**
   * Buffers changes for a key with no connected device. A variable already waiting is replaced by
   * its newer value and moves to the end. Returns the number of variables waiting.
   */
  outboxPush(apiKey: string, vars: readonly Var[]): Promise<number>;
  /** Atomically removes and returns everything waiting for the key, oldest change first. */
  outboxTake(apiKey: string): Promise<Var[]>;
  outboxLength(apiKey: string): Promise<number>;

  /**
   * The devices listDevices would list as offline (seen within `rememberMs`, no presence past `now`),
   * with their labels, in no particular order: what a client actor's recount of what waits for the
   * key's offline devices needs, without reading every online device's record (in a connect storm the
   * key's actor recounts once a second, and nearly every device is online).
   */
  listOfflineDevices(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>>;

  /**
   * The devices listDevices would list, with their labels only, in no particular order, in one round
   * trip: what a change counts its pending devices against (var-changes.ts deliver), once per batch
   * committed, where listDevices took two and parsed every device's record for its address.
   */
  listDeviceViews(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>>;
}
