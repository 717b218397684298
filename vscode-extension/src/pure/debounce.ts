// A trailing-edge debouncer with an explicit flush and dispose (timers injectable for tests).

export interface Debounced {
  trigger(): void;
  flush(): void;
  cancel(): void;
  readonly pending: boolean;
}

export interface TimerApi {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: TimerApi = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function debounce(fn: () => void, ms: number, timers: TimerApi = realTimers): Debounced {
  let handle: unknown = undefined;
  let pending = false;
  const run = () => {
    handle = undefined;
    pending = false;
    fn();
  };
  return {
    trigger() {
      if (pending) {
        timers.clear(handle);
      }
      pending = true;
      handle = timers.set(run, ms);
    },
    flush() {
      if (pending) {
        timers.clear(handle);
        run();
      }
    },
    cancel() {
      if (pending) {
        timers.clear(handle);
      }
      pending = false;
      handle = undefined;
    },
    get pending() {
      return pending;
    },
  };
}
