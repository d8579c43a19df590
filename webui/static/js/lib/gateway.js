// The browser's gateway client (Discord v10 opcodes): HELLO -> IDENTIFY (or RESUME), heartbeats
// with zombie detection, dispatches handed to the page, and reconnection that RESUMEs with the
// session id and last sequence so the server replays what was missed. When the server refuses
// to resume (INVALID_SESSION) the client IDENTIFYs afresh and says so ("reidentified"), so the
// page can refetch what it shows: the replay that would have filled the gap is gone.

const OP = { DISPATCH: 0, HEARTBEAT: 1, IDENTIFY: 2, RESUME: 6, RECONNECT: 7, INVALID_SESSION: 9, HELLO: 10, HEARTBEAT_ACK: 11 };
// Close codes after which reconnecting cannot help (bad token, bad request).
const FATAL = new Set([4003, 4004, 4010, 4011, 4012, 4013, 4014]);
const CLIENT_CLOSE = 4900; // our own "this socket is dead, reconnecting" close

export class Gateway extends EventTarget {
  /**
   * new Gateway({token, url}) then .connect(). Events: "dispatch" (detail {t, d}), "state"
   * (detail: "connecting" | "connected" | "reconnecting" | "closed"), "reidentified", "fatal".
   */
  constructor({ token, url }) {
    super();
    this.token = token;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/gateway`;
    this.sessionId = null;
    this.seq = null;
    this.state = "closed";
    this.ws = null;
    this.attempts = 0;
    this.hadSession = false; // identified at least once: a later IDENTIFY means a gap to refill
    this.stopped = false;
    this._beat = null;
    this._retry = null;
    this._acked = true;
    this._onOnline = () => { if (this.state === "reconnecting") this._reconnectNow(); };
    window.addEventListener("online", this._onOnline);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  connect() {
    this.stopped = false;
    clearTimeout(this._retry);
    if (this.state !== "reconnecting") this._setState("connecting");
    let ws;
    try {
      // always our own origin (the page's CSP allows no other), even if the server names another resume URL
      ws = new WebSocket(`${this.url}?v=10&encoding=json`);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (event) => { if (this.ws === ws) this._frame(event.data); };
    ws.onclose = (event) => { if (this.ws === ws) this._closed(event.code); };
    ws.onerror = () => { /* a close event follows */ };
  }

  /** Stop for good (logout, page leaving). */
  close() {
    this.stopped = true;
    this._stopBeat();
    clearTimeout(this._retry);
    window.removeEventListener("online", this._onOnline);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    this._setState("closed");
  }

  /** Drop the connection as a network failure would (the session stays resumable). The socket
   * is given up at once: its close event can wait for a closing handshake a dead network never
   * completes, and the page would show "connected" meanwhile. */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null; // its late events are no longer ours (the handlers check this.ws === ws)
    ws.close(CLIENT_CLOSE, "dropped");
    this._closed(CLIENT_CLOSE);
  }

  send(op, d) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  _frame(raw) {
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (frame.s !== null && frame.s !== undefined) this.seq = frame.s;
    switch (frame.op) {
      case OP.HELLO:
        this._startBeat(frame.d.heartbeat_interval);
        if (this.sessionId && this.seq !== null) {
          this.send(OP.RESUME, { token: this.token, session_id: this.sessionId, seq: this.seq });
        } else {
          this.send(OP.IDENTIFY, { token: this.token, properties: { os: navigator.platform || "web", browser: "townsquare-web", device: "townsquare-web" } });
        }
        break;
      case OP.HEARTBEAT:
        this.send(OP.HEARTBEAT, this.seq);
        break;
      case OP.HEARTBEAT_ACK:
        this._acked = true;
        break;
      case OP.RECONNECT:
        this.drop();
        break;
      case OP.INVALID_SESSION:
        // d=true: resumable, try again later; false: start a new session (after a short random wait, as Discord asks)
        if (!frame.d) { this.sessionId = null; this.seq = null; }
        this._stopBeat();
        if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
        this._setState("reconnecting");
        this._retry = setTimeout(() => this.connect(), 500 + Math.random() * 1000);
        break;
      case OP.DISPATCH:
        this._dispatch(frame.t, frame.d);
        break;
      default:
        break;
    }
  }

  _dispatch(t, d) {
    if (t === "READY") {
      this.sessionId = d.session_id;
      this.attempts = 0;
      this._setState("connected");
      const again = this.hadSession;
      this.hadSession = true;
      this.dispatchEvent(new CustomEvent("dispatch", { detail: { t, d } }));
      if (again) this.dispatchEvent(new CustomEvent("reidentified"));
      return;
    }
    if (t === "RESUMED") {
      this.attempts = 0;
      this._setState("connected");
    }
    this.dispatchEvent(new CustomEvent("dispatch", { detail: { t, d } }));
  }

  _startBeat(interval) {
    this._stopBeat();
    this._acked = true;
    const beat = () => {
      // no ACK since the last beat: the connection is a zombie; drop it and resume
      if (!this._acked) { this.drop(); return; }
      this._acked = false;
      this.send(OP.HEARTBEAT, this.seq);
    };
    // the first beat after interval * jitter, as Discord asks, then every interval
    this._beat = setTimeout(() => { beat(); this._beat = setInterval(beat, interval); }, interval * Math.random());
  }

  _stopBeat() {
    clearTimeout(this._beat);
    clearInterval(this._beat);
    this._beat = null;
  }

  _closed(code) {
    this._stopBeat();
    this.ws = null;
    if (this.stopped) return;
    if (FATAL.has(code)) {
      this._setState("closed");
      this.dispatchEvent(new CustomEvent("fatal", { detail: code }));
      return;
    }
    if (code === 4007 || code === 4009) { this.sessionId = null; this.seq = null; } // cannot resume: identify anew
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    this._setState("reconnecting");
    this.attempts += 1;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(this.attempts - 1, 6)) * (0.5 + Math.random() / 2);
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this.connect(), delay); // going back online reconnects at once (see _onOnline)
  }

  _reconnectNow() {
    clearTimeout(this._retry);
    this.connect();
  }
}
