/** A modal yes/no question on the native <dialog> (focus trap and Esc come with it). */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function ConfirmDialog(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      class="dialog"
      data-testid="confirm-dialog"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        props.onCancel();
      }}
    >
      <h3 id="confirm-title">{props.title}</h3>
      <div class="dialog-body">{props.children}</div>
      <div class="dialog-actions">
        <button
          type="button"
          class="btn"
          data-testid="confirm-cancel"
          onClick={props.onCancel}
          disabled={props.busy}
          autoFocus
        >
          Cancel
        </button>
        <button
          type="button"
          class="btn danger"
          data-testid="confirm-ok"
          onClick={props.onConfirm}
          disabled={props.busy}
        >
          {props.busy ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
