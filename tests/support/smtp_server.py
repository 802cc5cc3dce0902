#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for hostwatch's e-mail channel tests, on 127.0.0.1 only.

Two uses:

  smtp_server.py make-certs DIR
      Creates a throw-away CA and a server certificate for 127.0.0.1 / localhost with the
      openssl command-line tool: DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key.

  smtp_server.py serve --port-file F --out F [options]
      Binds 127.0.0.1 on a free port, writes the port to --port-file once it listens, and
      appends one JSON line per accepted message to --out:
        {"mail_from", "rcpt_tos", "tls", "auth_user", "auth_mechanism", "content"}
      (content is the raw message as received, decoded as UTF-8).

Options of serve:
  --tls none|starttls|implicit   connection security (starttls and implicit need --certs)
  --certs DIR                    where make-certs put server.pem / server.key
  --auth USER:PASSWORD           require AUTH (PLAIN or LOGIN) with these credentials
  --auth-mechanisms PLAIN,LOGIN  the mechanisms offered (default both)
  --auth-plaintext               offer AUTH without TLS (default: only after TLS)
  --rcpt-reply "451 4.3.0 ..."   answer RCPT TO with this reply
  --rcpt-reply-for ADDR          ... but only for this recipient
  --data-reply "550 5.7.1 ..."   answer the end of DATA with this reply (nothing is recorded)
  --hang                         accept TCP connections and never say anything

aiosmtpd comes from PyPI (pip install aiosmtpd); without it this script exits with status 3
and says so, and the tests fail loudly.
"""
import argparse
import asyncio
import json
import logging
import os
import secrets
import ssl
import subprocess
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover - the point is the message
    sys.stderr.write(
        "smtp_server.py: the Python package aiosmtpd is missing; "
        "install it with: python3 -m pip install aiosmtpd\n"
    )
    sys.exit(3)


def make_certs(directory):
    """CA + server certificate (EC P-256, SAN IP:127.0.0.1 and DNS:localhost) via openssl."""
    os.makedirs(directory, exist_ok=True)
    p = lambda name: os.path.join(directory, name)  # noqa: E731

    def run(*args):
        result = subprocess.run(["openssl", *args], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write("openssl %s failed:\n%s" % (args[0], result.stderr))
            sys.exit(4)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
        "-subj", "/CN=hostwatch test CA " + secrets.token_hex(4),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
        "-subj", "/CN=localhost")
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-set_serial", "0x" + secrets.token_hex(8), "-days", "2", "-extfile", p("server.ext"),
        "-out", p("server.pem"))


class Handler:
    def __init__(self, args):
        self.args = args

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.args.rcpt_reply
        if reply and (not self.args.rcpt_reply_for or self.args.rcpt_reply_for == address):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.data_reply:
            return self.args.data_reply
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None)
        auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": tls,
            "auth_user": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "auth_mechanism": getattr(session, "hw_mechanism", None),
            "content": envelope.original_content.decode("utf-8", "replace"),
        }
        with open(self.args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK: queued as hw%s" % secrets.token_hex(4)


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode() and auth_data.password == password.encode())
        if ok:
            session.hw_mechanism = mechanism
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


class Silent(asyncio.Protocol):
    """--hang: accepts, keeps the connection open, never answers."""
    connections = []

    def connection_made(self, transport):
        Silent.connections.append(transport)


async def serve(args):
    loop = asyncio.get_running_loop()
    context = None
    if args.tls in ("starttls", "implicit"):
        if not args.certs:
            sys.exit("smtp_server.py: --tls %s needs --certs DIR" % args.tls)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.path.join(args.certs, "server.pem"),
                                os.path.join(args.certs, "server.key"))
    if args.hang:
        server = await loop.create_server(Silent, "127.0.0.1", 0)
    else:
        kwargs = dict(hostname="smtp.test", ident="hostwatch-test-smtp")
        if args.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if args.auth:
            user, _, password = args.auth.partition(":")
            mechanisms = {m.strip().upper() for m in args.auth_mechanisms.split(",")}
            kwargs.update(
                authenticator=authenticator_for(user, password),
                auth_required=True,
                # Implicit TLS is invisible to aiosmtpd, so it must not insist on STARTTLS.
                auth_require_tls=not (args.auth_plaintext or args.tls == "implicit"),
                auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in mechanisms],
            )
        handler = Handler(args)
        server = await loop.create_server(
            lambda: SMTP(handler, **kwargs), "127.0.0.1", 0,
            ssl=context if args.tls == "implicit" else None)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def main():
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own chatter
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    certs = sub.add_parser("make-certs")
    certs.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    s.add_argument("--certs")
    s.add_argument("--auth")
    s.add_argument("--auth-mechanisms", default="PLAIN,LOGIN")
    s.add_argument("--auth-plaintext", action="store_true")
    s.add_argument("--rcpt-reply")
    s.add_argument("--rcpt-reply-for")
    s.add_argument("--data-reply")
    s.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    if args.command == "make-certs":
        make_certs(args.dir)
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
