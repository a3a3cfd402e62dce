// The one WebSocket: connect, `sync` as the first frame, heartbeats, reconnect with
// backoff. Emits 'state' (connecting | syncing | live | offline | waiting) and 'frame'.

import { freshToken, refresh } from './api.js';

export class Live extends EventTarget {
  /**
   * @param {() => Record<string, number>} cursors highest seq held per room
   * @param {() => Record<string, number>} changes change number per room, from `synced`
   */
  constructor(cursors, changes = () => ({})) {
    super();
    this.cursors = cursors;
    this.changes = changes;
    this.ws = null;
    this.state = 'offline';
    this.attempt = 0;
    this.pending = new Map(); // frame id → {resolve, reject}
    this.nextId = 1;
    this.stopped = true;
    window.addEventListener('offline', () => this.ws?.close());
    window.addEventListener('online', () => { if (!this.stopped && this.state !== 'live') this.reconnectNow(); });
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = null;
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    if (!this.ws) this.connect();
  }

  async connect() {
    if (this.stopped) return;
    this.setState('connecting');
    let token;
    try { token = await freshToken(); } catch { return this.retry(); }
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    // A browser cannot set Authorization on a WebSocket, and a token in the URL would end
    // up in logs: the token is the first frame. The server answers `hello`, or an `error`
    // and close 4003.
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      this.lastHeard = Date.now();
      if (frame.type === 'hello') return this.onHello(frame);
      if (frame.id && this.pending.has(frame.id) && ['ack', 'error', 'pong', 'synced'].includes(frame.type)) {
        const p = this.pending.get(frame.id);
        this.pending.delete(frame.id);
        frame.type === 'error' ? p.reject(frame) : p.resolve(frame);
        if (frame.type !== 'synced') return;
      }
      this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      for (const p of this.pending.values()) p.reject({ code: 'disconnected' });
      this.pending.clear();
      if (this.stopped) return this.setState('offline');
      if (ev.code === 4001) {
        // The session ended elsewhere: a refresh tells us for sure and logs us out.
        refresh().catch(() => {});
        return this.setState('offline');
      }
      // A refused token (4003, e.g. expired) or handshake: refresh before trying again.
      if (!opened || ev.code === 4003) refresh().catch(() => {});
      this.retry();
    };
  }

  async onHello(hello) {
    this.attempt = 0;
    this.setState('syncing');
    const interval = (hello.heartbeatInterval || 20) * 1000;
    clearInterval(this.heartbeat);
    this.lastHeard = Date.now();
    // Browsers cannot see WebSocket pings: an application ping tells a dead link apart.
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > interval * 2) return this.ws?.close();
      this.request({ type: 'ping' }).catch(() => {});
    }, interval);
    try {
      // Replays the messages after each cursor and every other change after each change
      // number: edits, deletions, reactions, pins, receipts, room changes.
      const synced = await this.request({ type: 'sync', cursors: this.cursors(), changes: this.changes() });
      this.setState('live', { synced });
    } catch {
      this.setState('live', {});
    }
  }

  retry() {
    if (this.stopped) return;
    // Exponential backoff with jitter, capped at 30 s.
    const delay = Math.min(30_000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.setState(navigator.onLine === false ? 'offline' : 'waiting', { retryIn: delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Sends a frame without waiting for an answer. False when not connected. */
  post(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a frame with an id; resolves with its ack/pong/synced, rejects with its error. */
  request(frame) {
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (!this.post({ ...frame, id })) return reject({ code: 'disconnected' });
      this.pending.set(id, { resolve, reject });
    });
  }
}
