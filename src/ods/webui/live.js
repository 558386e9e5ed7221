// One live connection per tab to the event stream, shared by every screen:
// the Events tab shows the events, other tabs refresh when theirs arrive.

import * as api from './api.js';

const KEPT = 500;

export function createLive() {
  const listeners = new Set();
  const watchers = new Set();
  let events = [];
  let state = 'connecting';
  let stop = null;
  let stopped = false;

  const notify = () => watchers.forEach((watch) => watch({ events, state }));

  function add(event) {
    if (events.length && events[0].id >= event.id) return;
    events = [event, ...events].slice(0, KEPT);
    listeners.forEach((listener) => listener(event));
    notify();
  }

  return {
    // Load the recent events, then follow the stream from the newest.
    async start() {
      let after = null;
      try {
        const recent = await api.get('/api/admin/events?limit=100');
        events = recent.items;
        after = events.length ? events[0].id : 0;
        notify();
      } catch {
        // Follow only new events; the stream reports a problem (or the app logs out on 401).
      }
      if (stopped) return; // logged out while the recent events loaded
      stop = api.stream('/api/admin/events/stream', {
        after,
        onEvent: add,
        onState: (next) => {
          state = next;
          notify();
        },
      });
    },
    stop() {
      stopped = true;
      if (stop) stop();
      listeners.clear();
      watchers.clear();
    },
    // fn(event) for each new event; returns the unsubscribe function.
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    // fn({events, state}) whenever either changes; returns the unsubscribe function.
    watch(fn) {
      watchers.add(fn);
      fn({ events, state });
      return () => watchers.delete(fn);
    },
  };
}
