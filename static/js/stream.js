// The WebSocket to /ws/sessions/{id}: parses every frame and pushes it into the store, reconnecting
// with backoff when the connection drops. It never touches the DOM; the frame loop reads the store.

export class Stream {
  /**
   * @param {object} store  anything with push(msg) and a `connected` flag + dirty.connection
   */
  constructor(store) {
    this.store = store;
    this.sessionId = null;
    this.ws = null;
    this.retry = 0;
    this.timer = null;
  }

  /** Follow one session (closing any previous connection). */
  open(sessionId) {
    this.close();
    this.sessionId = sessionId;
    this.retry = 0;
    this.connect();
  }

  /** Stop following; no reconnect. */
  close() {
    this.sessionId = null;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
    this.setConnected(false);
  }

  /** Send a command frame ({"type": "command", "action", "steps"?}); false when not connected. */
  command(action, steps) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    const msg = { type: "command", action };
    if (steps !== undefined) msg.steps = steps;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  setConnected(value) {
    if (this.store.connected !== value) {
      this.store.connected = value;
      this.store.dirty.connection = true;
    }
  }

  connect() {
    const id = this.sessionId;
    if (id === null) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/sessions/${encodeURIComponent(id)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.setConnected(true);
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // not JSON: ignore the frame, keep the connection
      }
      if (msg && typeof msg.type === "string") this.store.push(msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setConnected(false);
      // 4404: the session is gone; 4401: no valid token. Neither gets better by retrying.
      if (event.code === 4404 || event.code === 4401) return;
      // 1008: too many clients, or this one fell behind: come back later, with a fresh "hello"
      const delay = event.code === 1008 ? 5000 : Math.min(5000, 250 * 2 ** this.retry);
      this.retry = Math.min(this.retry + 1, 6);
      this.timer = setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {
      /* onclose follows and schedules the reconnect */
    };
  }
}
