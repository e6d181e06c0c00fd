"""An OpenID Connect provider for the tests, built on Authlib's server components.

It serves what hpcgate's log-in uses from a real provider: discovery
(``/.well-known/openid-configuration``), the signing keys (``/jwks``), the authorization
endpoint with a plain log-in form (``/authorize``), the token endpoint (authorization code with
PKCE, ``client_secret_basic`` or ``client_secret_post``; ``/token``) and userinfo
(``/userinfo``). ID tokens are RS256-signed with a key made at start-up.

    python -m tests.core.oidc_provider --users people.json --client-id hpcgate --client-secret dev

prints ``listening on http://127.0.0.1:PORT`` once it serves (``--port 0``, the default, takes a
free port). The people file maps a log-in name to a password and the claims released for it::

    {"ada": {"password": "pw", "claims": {"sub": "ada-1", "email": "ada@uni.example",
             "email_verified": true, "eduperson_entitlement": ["urn:..."]}}}

and is read again at every sign-in, so a test can change someone's claims between two log-ins.
Redirect URIs are accepted on loopback hosts and ``testserver`` (Django's test client) only.
"""

import argparse
import html
import json
import os
import re
import secrets
import socketserver
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.headers import Headers
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc.jwk import KeySet, RSAKey

REDIRECT_URI = re.compile(r"https?://(127\.0\.0\.1|localhost|\[::1\]|testserver)(:\d+)?/\S*")
CODE_LIFETIME = 600


@dataclass
class Person:
    login: str
    claims: dict


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    client_metadata: dict = field(default_factory=dict)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return bool(REDIRECT_URI.fullmatch(redirect_uri or ""))

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    login: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def is_expired(self):
        return time.time() > self.auth_time + CODE_LIFETIME


@dataclass
class Token(TokenMixin):
    access_token: str
    client: Client
    login: str
    scope: str
    expires_in: int
    issued_at: int = field(default_factory=lambda: int(time.time()))

    def check_client(self, client):
        return client.client_id == self.client.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self):
        return False

    def get_user(self):
        return self.login

    def get_client(self):
        return self.client


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]):
        self._values = values

    @property
    def data(self):
        return {key: values[0] for key, values in self._values.items()}

    @property
    def datalist(self):
        return self._values


class _Request(OAuth2Request):
    """A WSGI request as Authlib reads it: the query and the form body together."""

    def __init__(self, environ: dict, form: dict[str, list[str]]):
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        uri = f"http://{host}{environ.get('PATH_INFO', '/')}"
        if environ.get("QUERY_STRING"):
            uri += "?" + environ["QUERY_STRING"]
        headers = Headers(
            [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k[:5] == "HTTP_"]
        )
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        super().__init__(environ["REQUEST_METHOD"], uri, headers=headers)
        self._query, self._form = query, form
        self.payload = _Payload({**query, **form})

    @property
    def args(self):
        return {key: values[0] for key, values in self._query.items()}

    @property
    def form(self):
        return {key: values[0] for key, values in self._form.items()}


class _JsonPayload(JsonPayload):
    def __init__(self, data):
        self._data = data

    @property
    def data(self):
        return self._data


class Provider(AuthorizationServer):
    def __init__(self, *, issuer: str, people_file: Path, client: Client):
        super().__init__(scopes_supported=None)
        self.issuer = issuer
        self.people_file = people_file
        self.client = client
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)})
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, Token] = {}
        self.register_token_generator("default", BearerTokenGenerator(_random_token))
        self.register_grant(CodeGrant, [ProviderOpenIDCode(self), CodeChallenge(required=True)])
        self.resource_protector = ResourceProtector()
        self.resource_protector.register_token_validator(_BearerValidator(self))

    # What Authlib asks of a server.
    def query_client(self, client_id):
        return self.client if client_id == self.client.client_id else None

    def save_token(self, token, request):
        self.tokens[token["access_token"]] = Token(
            access_token=token["access_token"],
            client=request.client,
            login=request.user.login,
            scope=token.get("scope", ""),
            expires_in=token["expires_in"],
        )

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        json_request = JsonRequest(request.method, request.uri, request.headers)
        json_request.payload = _JsonPayload(request.payload.data)
        return json_request

    def handle_response(self, status, body, headers):
        return status, body, headers

    def send_signal(self, name, *args, **kwargs):
        pass

    # The people, read from their file at each use.
    def person(self, login: str) -> Person | None:
        people = json.loads(self.people_file.read_text())
        if login not in people:
            return None
        return Person(login=login, claims=dict(people[login]["claims"]))

    def password_check(self, login: str, password: str) -> Person | None:
        people = json.loads(self.people_file.read_text())
        entry = people.get(login)
        if entry is None or not secrets.compare_digest(entry["password"], password):
            return None
        return Person(login=login, claims=dict(entry["claims"]))

    def metadata(self) -> dict:
        metadata = OpenIDProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=f"{self.issuer}/authorize",
            token_endpoint=f"{self.issuer}/token",
            userinfo_endpoint=f"{self.issuer}/userinfo",
            jwks_uri=f"{self.issuer}/jwks",
            scopes_supported=["openid", "email", "profile", "eduperson_entitlement", "orcid"],
            response_types_supported=["code"],
            grant_types_supported=["authorization_code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
            claims_supported=[
                "sub",
                "email",
                "email_verified",
                "name",
                "eduperson_entitlement",
                "orcid",
                "voperson_id",
            ],
        )
        metadata.validate()
        return dict(metadata)

    def jwks(self) -> dict:
        return KeySet([self.key]).as_dict(private=False)


def _random_token(*args, **kwargs) -> str:
    return secrets.token_urlsafe(32)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, request):
        data = request.payload.data
        self.server.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            login=request.user.login,
            redirect_uri=data.get("redirect_uri", ""),
            scope=data.get("scope", ""),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code, client):
        found = self.server.codes.get(code)
        if found and found.client_id == client.client_id and not found.is_expired():
            return found
        return None

    def delete_authorization_code(self, authorization_code):
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return self.server.person(authorization_code.login)


class ProviderOpenIDCode(OpenIDCode):
    def __init__(self, provider: Provider):
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        return any(code.nonce == nonce for code in self.provider.codes.values())

    def resolve_client_private_key(self, client):
        return self.provider.key

    def get_client_algorithm(self, client):
        return "RS256"

    def get_client_claims(self, client):
        return {"iss": self.provider.issuer, "aud": [client.get_client_id()]}

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": self.provider.key.kid}

    def generate_user_info(self, user, scope):
        return UserInfo(user.claims)


class _BearerValidator(BearerTokenValidator):
    def __init__(self, provider: Provider):
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string):
        return self.provider.tokens.get(token_string)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body>
<h1>Test identity provider</h1>
<p>Signing in to <strong>{client}</strong>.</p>
{error}
<form method="post">
  <p><label for="username">User name</label> <input id="username" name="username"></p>
  <p><label for="password">Password</label>
     <input id="password" name="password" type="password"></p>
  <p><button type="submit">Sign in</button></p>
</form>
</body></html>
"""


def make_app(provider: Provider):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        method = environ["REQUEST_METHOD"]
        form: dict[str, list[str]] = {}
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length).decode()
            form = parse_qs(body, keep_blank_values=True)
        request = _Request(environ, form)
        if path == "/.well-known/openid-configuration":
            status, body, headers = 200, provider.metadata(), []
        elif path == "/jwks":
            status, body, headers = 200, provider.jwks(), []
        elif path == "/authorize":
            status, body, headers = _authorize(provider, request, method)
        elif path == "/token" and method == "POST":
            status, body, headers = provider.create_token_response(request)
        elif path == "/userinfo":
            status, body, headers = _userinfo(provider, request)
        else:
            status, body, headers = 404, {"error": "not_found"}, []
        headers = Headers(list(headers))
        if isinstance(body, dict):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        elif body:
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        headers.setdefault("Cache-Control", "no-store")
        payload = (body or "").encode()
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized"}
        start_response(f"{status} {reason.get(status, 'Error')}", headers.items())
        return [payload]

    return app


def _authorize(provider: Provider, request: _Request, method: str):
    try:
        grant = provider.get_consent_grant(request)
    except OAuth2Error as error:
        # An unknown client or a redirect URI it may not use: say so here, never redirect.
        return 400, dict(error.get_body()), []
    if method == "POST":
        person = provider.password_check(
            request.form.get("username", ""), request.form.get("password", "")
        )
        if person is not None:
            return provider.create_authorization_response(request, grant_user=person, grant=grant)
        error = '<p role="alert">Unknown user name or wrong password.</p>'
    else:
        error = ""
    page = LOGIN_PAGE.format(client=html.escape(grant.client.client_id), error=error)
    return 200, page, []


def _userinfo(provider: Provider, request: _Request):
    try:
        token = provider.resource_protector.validate_request(["openid"], request)
    except OAuth2Error as error:
        return error.status_code, dict(error.get_body()), error.get_headers()
    person = provider.person(token.login)
    if person is None:
        return 401, {"error": "invalid_token"}, []
    return 200, dict(person.claims), []


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(*, host: str, port: int, people_file: Path, client_id: str, client_secret: str):
    # Authlib refuses plain http unless told; this provider only ever listens on loopback.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    holder: dict = {}
    server = make_server(
        host,
        port,
        lambda environ, start: holder["app"](environ, start),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    issuer = f"http://{host}:{server.server_port}"
    provider = Provider(
        issuer=issuer, people_file=people_file, client=Client(client_id, client_secret)
    )
    holder["app"] = make_app(provider)
    print(f"listening on {issuer}", flush=True)
    server.serve_forever()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--users", type=Path, required=True, help="JSON file of people")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("The test provider listens on loopback only.")
    serve(
        host=args.host,
        port=args.port,
        people_file=args.users,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )


if __name__ == "__main__":
    main()
