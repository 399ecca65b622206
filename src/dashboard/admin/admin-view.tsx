/**
 * `#/admin`: sign in with the daemon's admin token, then the supervision tree, polled every
 * 1.5 s, with per-node kill (after confirmation) and paging through large dynamic supervisors.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { toast } from '../components/toasts';
import { plural } from '../format';
import { useNow } from '../hooks';
import type { NodeStatus, TreeNode } from '../../wire.js';
import { fetchChildren, fetchTree, killNode, loadAdminToken, saveAdminToken, walk, withChildren } from './admin-api';
import { ConfirmDialog } from './confirm-dialog';
import { type TreeUi, TreeNodeView } from './tree-node';

const POLL_MS = 1500;
const PAGE = 50;

function describeAdminError(err: unknown): string {
  if (!(err instanceof ApiError)) return 'Something went wrong.';
  if (err.status === 401 || err.status === 403) return 'That admin token was rejected.';
  if (err.status === 404) return 'The admin endpoints are disabled on this daemon (start it with OBSERVERIO_ADMIN_TOKEN set).';
  if (err.status === 429) return 'Too many attempts. Wait a minute, then try again.';
  return err.message;
}

export function AdminView() {
  const [token, setToken] = useState<string | null>(loadAdminToken);
  const [first, setFirst] = useState<TreeNode | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  if (!token) {
    return (
      <AdminSignIn
        notice={notice}
        onSignedIn={(t, tree) => {
          saveAdminToken(t);
          setFirst(tree);
          setNotice(null);
          setToken(t);
        }}
      />
    );
  }
  const leave = (why: string | null): void => {
    saveAdminToken(null);
    setFirst(null);
    setNotice(why);
    setToken(null);
  };
  return (
    <AdminTree
      token={token}
      initial={first}
      onRejected={() => leave('The admin token is no longer accepted. Sign in again.')}
      onSignOut={() => leave(null)}
    />
  );
}

function AdminSignIn(props: { notice: string | null; onSignedIn: (token: string, tree: TreeNode) => void }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const t = value.trim();
    if (!t) return setError('Enter the admin token.');
    setBusy(true);
    setError(null);
    try {
      props.onSignedIn(t, await fetchTree(t));
    } catch (err) {
      setError(describeAdminError(err));
      setBusy(false);
    }
  };
  return (
    <main class="auth">
      <div class="auth-card card">
        <h1>Admin</h1>
        <p class="muted">
          The supervision tree of this daemon. Sign in with the token it was started with
          (<code>OBSERVERIO_ADMIN_TOKEN</code>); it is kept for this tab only.
        </p>
        {props.notice && !error && <p class="notice">{props.notice}</p>}
        <form class="form" data-testid="admin-signin-form" onSubmit={submit} noValidate>
          <label>
            <span>Admin token</span>
            <input
              type="password"
              autoComplete="off"
              autoFocus
              value={value}
              data-testid="admin-token"
              onInput={(e) => setValue(e.currentTarget.value)}
            />
          </label>
          {error && (
            <p class="form-error" role="alert" data-testid="admin-error">
              {error}
            </p>
          )}
          <button type="submit" class="btn primary wide" disabled={busy} data-testid="admin-signin-submit">
            {busy ? 'Checking…' : 'Open the tree'}
          </button>
        </form>
      </div>
    </main>
  );
}

function AdminTree(props: { token: string; initial: TreeNode | null; onRejected: () => void; onSignOut: () => void }) {
  const { token } = props;
  const [tree, setTree] = useState<TreeNode | null>(props.initial);
  const [updatedAt, setUpdatedAt] = useState<number | null>(props.initial ? Date.now() : null);
  const [pollError, setPollError] = useState<string | null>(null);
  const [expanded, setExpanded] = useState<Map<string, boolean>>(new Map());
  const [loadingMore, setLoadingMore] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<TreeNode | null>(null);
  const [killing, setKilling] = useState(false);
  /** How many children to show for each node paged beyond the server's first N. */
  const pages = useRef(new Map<string, number>());
  const refresh = useRef<() => Promise<void>>(async () => {});
  const rejected = useRef(props.onRejected);
  rejected.current = props.onRejected;
  const now = useNow(500);

  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let inflight: Promise<void> | null = null;

    /** Re-reads every page shown so far for one node, in PAGE-sized requests (servers may cap `limit`). */
    const loadPages = async (path: string, count: number) => {
      const chunks = await Promise.all(
        Array.from({ length: Math.ceil(count / PAGE) }, (_, i) => fetchChildren(token, path, i * PAGE, PAGE)),
      );
      const byPath = new Map<string, TreeNode>();
      for (const c of chunks) for (const n of c.children) byPath.set(n.path, n);
      return { path, children: [...byPath.values()], childCount: chunks[0]?.childCount ?? null };
    };

    const load = async (): Promise<void> => {
      let t = await fetchTree(token);
      // Parents first, so a paged node nested inside another paged node is applied last.
      const wanted = [...pages.current].sort((a, b) => a[0].length - b[0].length);
      const paged = await Promise.all(wanted.map(([path, count]) => loadPages(path, count).catch(() => null)));
      for (const p of paged) if (p) t = withChildren(t, p.path, p.children, p.childCount);
      if (!alive) return;
      setTree(t);
      setUpdatedAt(Date.now());
      setPollError(null);
    };

    const tick = (): Promise<void> => {
      if (inflight) return inflight;
      clearTimeout(timer);
      inflight = (document.hidden ? Promise.resolve() : load())
        .catch((err: unknown) => {
          if (!alive) return;
          if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
            alive = false;
            rejected.current();
            return;
          }
          setPollError(err instanceof Error ? err.message : 'request failed');
        })
        .finally(() => {
          inflight = null;
          if (alive) timer = setTimeout(() => void tick(), POLL_MS);
        });
      return inflight;
    };

    refresh.current = async () => {
      if (inflight) await inflight;
      await tick();
    };
    if (props.initial) timer = setTimeout(() => void tick(), POLL_MS);
    else void tick();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [token]);

  const stats = useMemo(() => {
    const s: Record<NodeStatus, number> = { starting: 0, running: 0, restarting: 0, stopped: 0 };
    let restarts = 0;
    let nodes = 0;
    if (tree) {
      walk(tree, (n) => {
        nodes += 1;
        s[n.status] = (s[n.status] ?? 0) + 1;
        restarts += n.restarts || 0;
      });
    }
    return { ...s, restarts, nodes };
  }, [tree]);

  const setAll = (open: boolean): void => {
    if (!tree) return;
    const m = new Map<string, boolean>();
    walk(tree, (n) => m.set(n.path, open));
    setExpanded(m);
  };

  const ui: TreeUi = {
    now,
    loadingMore,
    isExpanded: (n, depth) => expanded.get(n.path) ?? depth < 2,
    toggle: (n, depth) => {
      const next = new Map(expanded);
      next.set(n.path, !(expanded.get(n.path) ?? depth < 2));
      setExpanded(next);
    },
    kill: (n) => setConfirm(n),
    showMore: (n) => {
      const shown = n.children?.length ?? 0;
      pages.current.set(n.path, Math.ceil((shown + PAGE) / PAGE) * PAGE);
      setLoadingMore((s) => new Set(s).add(n.path));
      void refresh.current().finally(() =>
        setLoadingMore((s) => {
          const next = new Set(s);
          next.delete(n.path);
          return next;
        }),
      );
    },
  };

  const doKill = async (): Promise<void> => {
    if (!confirm) return;
    const path = confirm.path;
    setKilling(true);
    try {
      const res = await killNode(token, path);
      const n = res?.node;
      const after = n?.status ? ` — now ${n.status}` : '';
      const restarts = typeof n?.restarts === 'number' ? `, ${plural(n.restarts, 'restart')}` : '';
      toast(`Killed ${path}${after}${restarts}`, 'success');
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) toast(`${path} no longer exists`, 'error');
      else if (err instanceof ApiError && (err.status === 401 || err.status === 403)) props.onRejected();
      else toast(`Kill failed: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setKilling(false);
      setConfirm(null);
      void refresh.current();
    }
  };

  const age = updatedAt === null ? null : (now - updatedAt) / 1000;
  return (
    <main class="admin">
      <section class="card">
        <header class="card-head">
          <h2>Supervision tree</h2>
          <div class="head-tools">
            <span
              class={pollError ? 'conn conn-bad' : 'conn conn-ok'}
              data-testid="admin-live"
              data-state={pollError ? 'error' : 'live'}
            >
              <span class="conn-dot" aria-hidden="true" />
              {pollError
                ? `Cannot refresh: ${pollError}${age !== null ? ` (data from ${Math.round(age)} s ago)` : ''}`
                : age === null
                  ? 'Loading…'
                  : `Live · updated ${age < 1 ? 'just now' : `${age.toFixed(0)} s ago`}`}
            </span>
            <button type="button" class="btn small ghost" data-testid="tree-expand-all" onClick={() => setAll(true)}>
              Expand all
            </button>
            <button type="button" class="btn small ghost" data-testid="tree-collapse-all" onClick={() => setAll(false)}>
              Collapse all
            </button>
            <button
              type="button"
              class="btn small"
              data-testid="admin-signout"
              title="Forget the admin token in this tab"
              onClick={props.onSignOut}
            >
              Forget token
            </button>
          </div>
        </header>
        {tree && (
          <div class="tree-summary small" data-testid="tree-summary">
            <span>
              <span class="dot running" /> {stats.running} running
            </span>
            <span>
              <span class="dot restarting" /> {stats.restarting} restarting
            </span>
            <span>
              <span class="dot stopped" /> {stats.stopped} stopped
            </span>
            <span class="muted">
              {plural(stats.restarts, 'restart')} in all · {plural(stats.nodes, 'node')} loaded
            </span>
          </div>
        )}
        {tree ? (
          <ul class="tree" role="tree" data-testid="tree">
            <TreeNodeView node={tree} depth={0} ui={ui} />
          </ul>
        ) : (
          <p class="empty muted">{pollError ? `Could not load the tree: ${pollError}` : 'Loading…'}</p>
        )}
      </section>
      {confirm && (
        <ConfirmDialog
          title={`Kill ${confirm.name}?`}
          confirmLabel="Kill"
          busy={killing}
          onConfirm={() => void doKill()}
          onCancel={() => setConfirm(null)}
        >
          <p>
            <code>{confirm.path}</code> will be stopped as if it crashed. Its supervisor then applies its strategy
            {confirm.restart ? (
              <>
                {' '}
                (restart: <strong>{confirm.restart}</strong>)
              </>
            ) : null}
            .
          </p>
          {confirm.kind === 'supervisor' && (
            <p class="warn-text">
              This is a supervisor: everything under it ({plural(confirm.childCount ?? confirm.children?.length ?? 0, 'child', 'children')}) goes
              down with it.
            </p>
          )}
        </ConfirmDialog>
      )}
    </main>
  );
}
