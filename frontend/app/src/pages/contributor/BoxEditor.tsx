// Bounding boxes on an image, in the image's own pixels. Draw with two clicks or a drag (a new
// box may start inside another); the selected box moves with the arrow keys (Shift: 10 px)
// and resizes with Ctrl+arrows; Delete removes it; Ctrl+Z undoes.
import { useCallback, useEffect, useRef, useState, type PointerEvent as ReactPointerEvent } from "react";

export interface Box {
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

interface Point {
  x: number;
  y: number;
}

const COLORS = ["#0b57d0", "#c5221f", "#188038", "#b06000", "#8430ce", "#007b83", "#b3261e", "#5f6368", "#e8710a"];
// A pointer that moves less than this (screen pixels) between down and up is a click.
const DRAG_THRESHOLD = 4;

export function colorOf(classes: string[], label: string): string {
  return COLORS[Math.max(0, classes.indexOf(label)) % COLORS.length];
}

function clampBox(b: Box, w: number, h: number): Box {
  const width = Math.max(1, Math.min(b.width, w));
  const height = Math.max(1, Math.min(b.height, h));
  const x = Math.max(0, Math.min(b.x, w - width));
  const y = Math.max(0, Math.min(b.y, h - height));
  return { ...b, x, y, width, height };
}

function boxFrom(a: Point, b: Point, label: string, w: number, h: number): Box {
  const x0 = Math.max(0, Math.min(a.x, b.x));
  const y0 = Math.max(0, Math.min(a.y, b.y));
  const x1 = Math.min(w, Math.max(a.x, b.x));
  const y1 = Math.min(h, Math.max(a.y, b.y));
  return { label, x: x0, y: y0, width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0) };
}

export interface BoxState {
  boxes: Box[];
  selected: number | null;
}

/** The boxes, the selection and the undo history, with the edits the keys and the list make. */
export function useBoxes(width: number, height: number) {
  const [state, setState] = useState<BoxState>({ boxes: [], selected: null });
  const history = useRef<BoxState[]>([]);

  // The state as last set, so an edit and its undo entry are made once, outside React's
  // updaters (which StrictMode runs twice).
  const current = useRef(state);
  const commit = useCallback((updated: BoxState) => {
    current.current = updated;
    setState(updated);
  }, []);
  const change = useCallback(
    (next: (s: BoxState) => BoxState, undoable = true) => {
      const now = current.current;
      const updated = next(now);
      if (updated === now) return;
      if (undoable) history.current.push(now);
      commit(updated);
    },
    [commit],
  );

  const api = {
    state,
    add: (box: Box) => change((s) => ({ boxes: [...s.boxes, clampBox(box, width, height)], selected: s.boxes.length })),
    select: (i: number | null) => change((s) => ({ ...s, selected: i }), false),
    remove: () =>
      change((s) => (s.selected === null ? s : { boxes: s.boxes.filter((_, i) => i !== s.selected), selected: null })),
    relabel: (label: string) =>
      change((s) =>
        s.selected === null ? s : { ...s, boxes: s.boxes.map((b, i) => (i === s.selected ? { ...b, label } : b)) },
      ),
    nudge: (dx: number, dy: number, resize: boolean) =>
      change((s) => {
        if (s.selected === null) return s;
        const boxes = s.boxes.map((b, i) => {
          if (i !== s.selected) return b;
          if (!resize) return clampBox({ ...b, x: b.x + dx, y: b.y + dy }, width, height);
          const w = Math.max(1, Math.min(b.width + dx, width - b.x));
          const h = Math.max(1, Math.min(b.height + dy, height - b.y));
          return { ...b, width: w, height: h };
        });
        return { ...s, boxes };
      }),
    undo: () => {
      const previous = history.current.pop();
      if (previous) commit(previous);
    },
  };
  return api;
}

export function BoxCanvas({
  src,
  width,
  height,
  classes,
  current,
  state,
  onAdd,
  onSelect,
}: {
  src: string;
  width: number;
  height: number;
  classes: string[];
  current: string;
  state: BoxState;
  onAdd: (b: Box) => void;
  onSelect: (i: number | null) => void;
}) {
  const svg = useRef<SVGSVGElement>(null);
  const [anchor, setAnchor] = useState<Point | null>(null); // first click, or where a drag began
  const [pointer, setPointer] = useState<Point | null>(null);
  const down = useRef<{ client: Point; image: Point; hadAnchor: boolean } | null>(null);

  useEffect(() => {
    if (!anchor) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        setAnchor(null);
        setPointer(null);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [anchor]);

  // A new image: no half-drawn box carries over.
  useEffect(() => {
    setAnchor(null);
    setPointer(null);
  }, [src]);

  const toImage = (e: { clientX: number; clientY: number }): Point => {
    const rect = svg.current!.getBoundingClientRect();
    const x = Math.round(((e.clientX - rect.left) / rect.width) * width);
    const y = Math.round(((e.clientY - rect.top) / rect.height) * height);
    return { x: Math.max(0, Math.min(width, x)), y: Math.max(0, Math.min(height, y)) };
  };

  const onPointerDown = (e: ReactPointerEvent<SVGSVGElement>) => {
    if (e.button !== 0) return;
    e.preventDefault();
    svg.current?.setPointerCapture?.(e.pointerId);
    const image = toImage(e);
    down.current = { client: { x: e.clientX, y: e.clientY }, image, hadAnchor: anchor !== null };
    if (anchor === null) setAnchor(image);
    setPointer(image);
  };

  const onPointerMove = (e: ReactPointerEvent<SVGSVGElement>) => {
    if (anchor !== null) setPointer(toImage(e));
  };

  const onPointerUp = (e: ReactPointerEvent<SVGSVGElement>) => {
    const start = down.current;
    down.current = null;
    if (!start || anchor === null) return;
    const end = toImage(e);
    const moved = Math.hypot(e.clientX - start.client.x, e.clientY - start.client.y) >= DRAG_THRESHOLD;
    if (moved && !start.hadAnchor) {
      // A drag: the box spans from where it began to where it ended.
      onAdd(boxFrom(anchor, end, current, width, height));
      setAnchor(null);
    } else if (start.hadAnchor) {
      // The second click closes the box begun by the first.
      if (end.x !== anchor.x && end.y !== anchor.y) onAdd(boxFrom(anchor, end, current, width, height));
      setAnchor(null);
    } else {
      onSelect(null); // a first click: the box is begun, the selection set aside
    }
    setPointer(null);
  };

  const draft = anchor && pointer ? boxFrom(anchor, pointer, current, width, height) : null;
  const stroke = Math.max(1, Math.round(Math.max(width, height) / 300));
  return (
    <>
      <div className="box-canvas">
        <img src={src} alt="The image to label" width={width} height={height} draggable={false} />
        <svg
          ref={svg}
          viewBox={`0 0 ${width} ${height}`}
          preserveAspectRatio="none"
          role="application"
          aria-label={`Drawing area, ${width} by ${height} pixels: click twice or drag to draw a box`}
          data-testid="box-canvas"
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
        >
          {/* A white halo under each box keeps it visible on any image. */}
          {state.boxes.map((b, i) => (
            <rect
              key={`halo-${i}`}
              x={b.x}
              y={b.y}
              width={b.width}
              height={b.height}
              fill="none"
              stroke="#ffffff"
              strokeWidth={i === state.selected ? stroke * 5 : stroke * 3.5}
              pointerEvents="none"
            />
          ))}
          {state.boxes.map((b, i) => (
            <rect
              key={i}
              x={b.x}
              y={b.y}
              width={b.width}
              height={b.height}
              fill="none"
              stroke={colorOf(classes, b.label)}
              strokeWidth={i === state.selected ? stroke * 3 : stroke * 1.5}
              strokeDasharray={i === state.selected ? `${stroke * 6} ${stroke * 3}` : undefined}
              pointerEvents="none"
            />
          ))}
          {draft ? (
            <rect x={draft.x} y={draft.y} width={draft.width} height={draft.height} fill="rgba(11,87,208,0.12)" stroke="#0b57d0" strokeWidth={stroke} pointerEvents="none" />
          ) : null}
          {anchor ? <circle cx={anchor.x} cy={anchor.y} r={stroke * 3} fill="#f29900" pointerEvents="none" /> : null}
        </svg>
      </div>
        <p className="muted draw-hint" aria-live="polite">
          {anchor && !down.current ? "Click the opposite corner to finish the box (Esc cancels)." : "\u00a0"}
        </p>
    </>
  );
}
