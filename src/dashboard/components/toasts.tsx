/** Short-lived notices (server errors, kill results) stacked in a corner; anything may call `toast()`. */
import { useEffect, useState } from 'preact/hooks';

export type ToastKind = 'info' | 'success' | 'error';
interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

let nextId = 1;
let toasts: Toast[] = [];
const listeners = new Set<(t: Toast[]) => void>();

function publish(): void {
  for (const fn of listeners) fn(toasts);
}

export function dismissToast(id: number): void {
  toasts = toasts.filter((t) => t.id !== id);
  publish();
}

export function toast(text: string, kind: ToastKind = 'info', ttlMs = kind === 'error' ? 8000 : 4000): void {
  const id = nextId++;
  toasts = [...toasts.slice(-4), { id, kind, text }];
  publish();
  setTimeout(() => dismissToast(id), ttlMs);
}

export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    listeners.add(setList);
    return () => {
      listeners.delete(setList);
    };
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} data-testid="toast" data-kind={t.kind}>
          <span>{t.text}</span>
          <button type="button" class="icon-btn" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
