"""A real SMTP server (aiosmtpd) for the notifier tests.

Binds 127.0.0.1:0 and prints {"port": N}. With --down it keeps the port bound but not
listening (connections are refused) until a line arrives on stdin, then serves. Every
message received is printed as one JSON line. With --auth USER:PASS it requires login.
With --starttls CERT KEY it requires STARTTLS; with --tls CERT KEY it speaks TLS from the
first byte.
"""
import asyncio
import email
import email.policy
import json
import logging
import socket
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Login over plain text is what this test server is for; keep its warnings out of the logs.
warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def emit(obj):
    print(json.dumps(obj), flush=True)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data if session.authenticated else None
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        emit({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
        })
        return "250 OK"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            (auth_data.login.decode(), auth_data.password.decode()) == expected
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data.login.decode() if ok else None)
    return check


async def main():
    args = sys.argv[1:]
    down = "--down" in args
    auth = None
    if "--auth" in args:
        user, _, password = args[args.index("--auth") + 1].partition(":")
        auth = (user, password)
    ctx = None
    for flag in ("--starttls", "--tls"):
        if flag in args:
            i = args.index(flag)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args[i + 1], args[i + 2])
    starttls = "--starttls" in args
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    emit({"port": sock.getsockname()[1]})
    loop = asyncio.get_running_loop()
    if down:
        await loop.run_in_executor(None, sys.stdin.readline)

    def factory():
        if auth:
            return SMTP(Handler(), authenticator=authenticator(auth), auth_required=True,
                        auth_require_tls=False)
        if starttls:
            return SMTP(Handler(), tls_context=ctx, require_starttls=True)
        return SMTP(Handler())

    server = await loop.create_server(factory, sock=sock, ssl=None if starttls else ctx)
    emit({"up": True})
    await server.serve_forever()


asyncio.run(main())
