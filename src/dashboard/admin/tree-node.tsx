/** One node of the supervision tree and, when expanded, its children (recursively). */
import { compact, ago, duration, fullTime, plural, toMs } from '../format';
import type { TreeNode } from '../../wire.js';

export interface TreeUi {
  now: number;
  isExpanded: (n: TreeNode, depth: number) => boolean;
  toggle: (n: TreeNode, depth: number) => void;
  kill: (n: TreeNode) => void;
  showMore: (n: TreeNode) => void;
  loadingMore: ReadonlySet<string>;
}

const msText = (ms: number): string => (ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`);

function strategyText(n: TreeNode): string | null {
  if (n.kind !== 'supervisor') return null;
  const parts: string[] = [];
  if (n.strategy) parts.push(n.strategy);
  if (n.intensity !== undefined && n.period !== undefined) {
    parts.push(`max ${n.intensity} restarts / ${msText(n.period)}`);
  }
  if (n.backoff) parts.push(`backoff ${msText(n.backoff.initialMs)}–${msText(n.backoff.maxMs)}`);
  return parts.join(' · ') || null;
}

/** The backoff badge: the wait being served while restarting, else the delay still in force. */
function BackoffBadge(props: { node: TreeNode }) {
  const { node: n } = props;
  const ms = n.backoffMs ?? 0;
  if (ms <= 0 || n.status === 'stopped') return null;
  const waiting = n.status === 'restarting';
  return (
    <span
      class={`backoff-chip${waiting ? ' waiting' : ''}`}
      data-testid={`tree-backoff-${n.path}`}
      title={
        waiting
          ? `crashed again soon after its last restart: its supervisor waits ${ms} ms before restarting it`
          : `its latest restart waited ${ms} ms; a crash now would wait longer, until it has run long enough without crashing`
      }
    >
      {waiting ? `restart in ${ms} ms` : `backoff ${ms} ms`}
    </span>
  );
}

export function TreeNodeView(props: { node: TreeNode; depth: number; ui: TreeUi }) {
  const { node: n, depth, ui } = props;
  const children = n.children ?? [];
  const total = n.childCount ?? children.length;
  const hasChildren = children.length > 0 || total > 0;
  const open = hasChildren && ui.isExpanded(n, depth);
  const more = total > children.length || (!!n.truncated && children.length > 0);
  const started = toMs(n.startedAt);
  const crashAt = n.lastCrash ? toMs(n.lastCrash.at) : null;
  const info = n.info ? Object.entries(n.info) : [];
  const strategy = strategyText(n);

  return (
    <li class="tree-item" role="treeitem" aria-expanded={hasChildren ? open : undefined}>
      <div
        class={`tree-row status-${n.status}`}
        data-testid={`tree-node-${n.path}`}
        data-status={n.status}
        data-restarts={n.restarts}
        data-kind={n.kind}
      >
        <div class="tree-main">
          {hasChildren ? (
            <button
              type="button"
              class="caret"
              aria-label={open ? `Collapse ${n.name}` : `Expand ${n.name}`}
              data-testid={`tree-toggle-${n.path}`}
              onClick={() => ui.toggle(n, depth)}
            >
              {open ? '▾' : '▸'}
            </button>
          ) : (
            <span class="caret-space" />
          )}
          <span class={`dot ${n.status}`} aria-hidden="true" />
          <span class="node-name mono" title={n.path}>
            {n.name}
          </span>
          <span class={`kind kind-${n.kind}`}>{n.kind}</span>
          {strategy && <span class="muted small">{strategy}</span>}
          {hasChildren && <span class="muted small">{plural(total, 'child', 'children')}</span>}
          {!!n.counts?.restarting && <span class="count-chip restarting">{n.counts.restarting} restarting</span>}
          {!!n.counts?.stopped && <span class="count-chip stopped">{n.counts.stopped} stopped</span>}
          <BackoffBadge node={n} />
          {info.length > 0 && (
            <span class="facts" data-testid={`tree-info-${n.path}`}>
              {info.map(([k, v]) => (
                <span key={k} class="fact" title={`${k}: ${compact(v)}`}>
                  <span class="fact-k">{k}</span> {compact(v)}
                </span>
              ))}
            </span>
          )}
        </div>
        <div class="tree-facts">
          <span class={`status-chip ${n.status}`} data-testid={`tree-status-${n.path}`}>
            {n.status}
          </span>
          <span
            class={n.restarts > 0 ? 'restarts hot' : 'restarts'}
            title="restarts"
            data-testid={`tree-restarts-${n.path}`}
          >
            ↻ {n.restarts}
          </span>
          <span class="uptime muted small" title={started === null ? '' : `started ${fullTime(started)}`}>
            {started === null || n.status === 'stopped' ? '' : `up ${duration(ui.now - started)}`}
          </span>
          {n.mailbox !== undefined && (
            <span class={n.mailbox > 100 ? 'mailbox hot small' : 'mailbox muted small'} title="messages waiting in the mailbox">
              ✉ {n.mailbox}
            </span>
          )}
          <button
            type="button"
            class="btn tiny danger-ghost"
            data-testid={`kill-${n.path}`}
            aria-label={`Kill ${n.path}`}
            onClick={() => ui.kill(n)}
            disabled={n.status === 'stopped'}
          >
            Kill
          </button>
        </div>
        {n.lastCrash && (
          <div class="tree-extra">
            <span class="crash" data-testid={`tree-crash-${n.path}`} title={crashAt === null ? '' : fullTime(crashAt)}>
              last crash: <span class="mono">{n.lastCrash.reason}</span>
              {crashAt !== null && <span class="muted"> · {ago(crashAt, ui.now)}</span>}
            </span>
          </div>
        )}
      </div>
      {open && (
        <ul class="tree-children" role="group">
          {children.map((c) => (
            <TreeNodeView key={c.path} node={c} depth={depth + 1} ui={ui} />
          ))}
          {more && (
            <li class="tree-more">
              <button
                type="button"
                class="btn tiny"
                data-testid={`tree-more-${n.path}`}
                disabled={ui.loadingMore.has(n.path)}
                onClick={() => ui.showMore(n)}
              >
                {ui.loadingMore.has(n.path) ? 'Loading…' : 'Show more'}
              </button>
              <span class="muted small">
                showing {children.length} of {total}
              </span>
            </li>
          )}
        </ul>
      )}
    </li>
  );
}
