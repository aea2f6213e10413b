// A minimal observable store for React (useSyncExternalStore), so state that is not part of the
// graph (catalog, run state, panels) can be read by any component without prop drilling.
import { useSyncExternalStore } from "react";

export interface Store<S> {
  get(): S;
  set(update: Partial<S> | ((state: S) => Partial<S>)): void;
  /** Apply several updates with one notification at the end (a burst of server events). */
  batch(apply: () => void): void;
  subscribe(listener: () => void): () => void;
}

export function createStore<S extends object>(initial: S): Store<S> {
  let state = initial;
  const listeners = new Set<() => void>();
  let batching = 0;
  let changed = false;
  const notify = () => {
    if (batching) changed = true;
    else listeners.forEach((listener) => listener());
  };
  return {
    get: () => state,
    set(update) {
      const patch = typeof update === "function" ? update(state) : update;
      state = { ...state, ...patch };
      notify();
    },
    batch(apply) {
      batching++;
      try {
        apply();
      } finally {
        batching--;
        if (!batching && changed) {
          changed = false;
          notify();
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Subscribe to a slice of a store. The selector must return stable references. */
export function useStore<S extends object, T>(store: Store<S>, selector: (state: S) => T): T {
  return useSyncExternalStore(store.subscribe, () => selector(store.get()));
}
