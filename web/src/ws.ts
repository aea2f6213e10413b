// Websocket client: parses server events and reconnects after a drop.
import { websocketUrl } from "./api";
import type { ServerEvent } from "./types";

export type ConnectionState = "connecting" | "open" | "closed";

export interface EventSocket {
  close(): void;
}

export function connectEvents(
  onEvent: (event: ServerEvent) => void,
  onState: (state: ConnectionState) => void,
): EventSocket {
  let socket: WebSocket | null = null;
  let closed = false;
  let retryDelay = 500;
  let retryTimer: number | undefined;

  const open = () => {
    if (closed) return;
    onState("connecting");
    socket = new WebSocket(websocketUrl());
    socket.onopen = () => {
      retryDelay = 500;
      onState("open");
    };
    socket.onmessage = (message) => {
      if (typeof message.data !== "string") return;
      let event: ServerEvent;
      try {
        event = JSON.parse(message.data) as ServerEvent;
      } catch {
        return;
      }
      if (event && typeof event.type === "string") onEvent(event);
    };
    socket.onclose = () => {
      socket = null;
      if (closed) return;
      onState("closed");
      retryTimer = window.setTimeout(open, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  };

  open();
  return {
    close() {
      closed = true;
      window.clearTimeout(retryTimer);
      socket?.close();
    },
  };
}
