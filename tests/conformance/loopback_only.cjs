// Preloaded into the conformance suite (`node --require`): the suite may open connections to
// 127.0.0.1 only, so a scenario or a dependency that tries to reach anything else fails loudly
// instead of leaving the machine. Every client socket (http, fetch/undici, tls) goes through
// net.Socket#connect, so that one method is the gate.
"use strict";
const net = require("node:net");

const ALLOWED_HOST = "127.0.0.1";
const connect = net.Socket.prototype.connect;

/** The host a connect() call targets, or null for a local socket path. */
function targetHost(args) {
  // net.connect hands its already normalised [options, callback] pair over as one array.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === "object") {
    return first.path ? null : (first.host ?? "localhost"); // a path makes it a local socket
  }
  if (typeof first === "string" && !/^\d+$/.test(first)) return null;
  return typeof args[1] === "string" ? args[1] : "localhost";
}

net.Socket.prototype.connect = function (...args) {
  const host = targetHost(args);
  if (host !== ALLOWED_HOST) {
    throw new Error(
      `loopback_only.cjs: the conformance suite may connect to ${ALLOWED_HOST} only, not ` +
        (host === null ? "a local socket path" : host),
    );
  }
  return connect.apply(this, args);
};
