/** Builds the cell for a normalised spec; kept apart so supervisors and cells avoid an import cycle. */
import type { Cell, ParentCell } from './cell.js';
import type { NormalizedSpec } from './child-spec.js';

type CellFactory = (spec: NormalizedSpec, parent: ParentCell) => Cell;
const factories: Partial<Record<NormalizedSpec['start']['kind'], CellFactory>> = {};

export function registerCellKind(kind: NormalizedSpec['start']['kind'], f: CellFactory): void {
  factories[kind] = f;
}

export function makeCell(spec: NormalizedSpec, parent: ParentCell): Cell {
  const f = factories[spec.start.kind];
  if (!f) throw new Error(`no cell kind ${spec.start.kind}`);
  const cell = f(spec, parent);
  spec.handle?.attach(cell);
  return cell;
}
