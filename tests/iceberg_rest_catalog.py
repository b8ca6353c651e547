"""A real Iceberg REST catalog server for the tests: the REST protocol over pyiceberg 0.12's
`SqlCatalog` (sqlite).

The server is a thin adapter. Request bodies are parsed with pyiceberg's own request models
(`CreateTableRequest`, `CommitTableRequest`) and the work is done by `SqlCatalog`, so what a
commit means (requirements checked against the current metadata, updates applied, a new
metadata file written, the catalog pointer swapped only if nobody else moved it) is pyiceberg's,
not ours. Answers use pyiceberg's response models (`TableResponse`, `CommitTableResponse`).

Endpoints (the spec's paths under `/v1/{prefix}`, prefix from `GET /v1/config`):
- `GET /v1/config`; `POST /v1/oauth/tokens` (client_credentials) when started with a credential
- namespaces: list, create, load, exists (HEAD), drop
- tables: list, create, load, exists (HEAD), commit (POST), drop (DELETE)

Authentication: with `token`, every request must carry `Authorization: Bearer <token>`; with
`credential` (`id:secret`), clients exchange it at `/v1/oauth/tokens` for a token, and
`revoke_tokens()` makes every issued token answer 401 from then on (an expiry).

Faults for the exactly-once tests (`inject(...)`): `lose_commit_answer` applies the next commit
and then answers 502 (the answer a client sees when a gateway drops the real one);
`conflict` answers the next commit 409 without applying it.

Where the REST spec and pyiceberg's models differ, the adapter fills in what the spec leaves
optional before validating: a create request without `location`, `partition-spec` or
`write-order` (iceberg-rust omits them when unset), and partition fields without `field-id`
(the server assigns them, 1000 upward, as the Java reference server does).

With `tls`, the server speaks https (`make_certificates` makes a CA and a certificate for
127.0.0.1).

Run standalone: `python tests/iceberg_rest_catalog.py --port 8181 --warehouse file:///tmp/wh`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import ssl
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError as PydanticValidationError
from pyiceberg.catalog.rest import CreateTableRequest, TableResponse
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableRequest
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

NAMESPACE_SEPARATOR = "\x1f"


class HttpError(Exception):
    def __init__(self, code: int, kind: str, message: str):
        super().__init__(message)
        self.code, self.kind, self.message = code, kind, message


class RestCatalogServer:
    """The server on 127.0.0.1:`port` (0: any free port), serving in a background thread."""

    def __init__(self, db_path: Path, warehouse: str | None, port: int = 0, prefix: str = "floe-test",
                 token: str | None = None, credential: str | None = None, storage: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None):
        """`storage`: FileIO properties (`s3.endpoint`, keys, ...) the catalog writes metadata
        with; handed to clients in every table's `config` too, as a catalog that vends storage
        settings does (Floe does not use them: it writes through its own object store).
        `tls`: (certificate, key) PEM files: serve https."""
        props = {"uri": f"sqlite:///{db_path}", **(storage or {})}
        if warehouse:
            props["warehouse"] = warehouse
        self.catalog = SqlCatalog("rest-test", **props)
        self.storage = dict(storage or {})
        self.prefix = prefix
        self.token = token
        self.credential = credential
        self.issued: set[str] = set()
        self.lock = threading.Lock()  # one catalog operation at a time (sqlite, and simple)
        self.faults: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.config_queries: list[dict[str, list[str]]] = []
        # The update actions of every applied commit, in order (e.g. ["add-snapshot", "set-snapshot-ref"]).
        self.commits: list[list[str]] = []
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.uri = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="rest-catalog", daemon=True)

    def start(self) -> RestCatalogServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- test controls -----------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        assert fault in ("lose_commit_answer", "conflict"), fault
        with self.lock:
            self.faults.append(fault)

    def revoke_tokens(self) -> None:
        with self.lock:
            self.issued.clear()

    def client_properties(self) -> dict[str, str]:
        """Properties for pyiceberg's RestCatalog client against this server."""
        props = {"uri": self.uri}
        if self.token:
            props["token"] = self.token
        if self.credential:
            props["credential"] = self.credential
            props["oauth2-server-uri"] = f"{self.uri}/v1/oauth/tokens"
        return props

    # --- auth ------------------------------------------------------------------------------------

    def check_auth(self, header: str | None) -> None:
        if self.token is None and self.credential is None:
            return
        bearer = header[len("Bearer "):] if header and header.startswith("Bearer ") else None
        if self.token is not None and bearer == self.token:
            return
        if self.credential is not None and bearer in self.issued:
            return
        raise HttpError(401, "NotAuthorizedException", "missing or invalid bearer token")

    def exchange(self, form: dict[str, list[str]]) -> dict:
        if self.credential is None:
            raise HttpError(400, "invalid_request", "this server takes no client credentials")
        client_id, _, secret = self.credential.partition(":")
        got_id = (form.get("client_id") or [""])[0]
        got_secret = (form.get("client_secret") or [""])[0]
        if (form.get("grant_type") or [""])[0] != "client_credentials" or got_id != client_id or got_secret != secret:
            raise HttpError(401, "invalid_client", "unknown client credentials")
        token = secrets.token_hex(16)
        self.issued.add(token)
        return {"access_token": token, "token_type": "bearer", "expires_in": 3600,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    # --- the protocol ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               auth: str | None) -> tuple[int, dict | None]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] != ["v1"]:
            raise HttpError(404, "NoSuchEndpointException", f"no endpoint {path}")
        rest = parts[1:]
        if rest == ["oauth", "tokens"] and method == "POST":
            form = parse_qs(body.decode())
            with self.lock:
                return 200, self.exchange(form)
        with self.lock:
            self.check_auth(auth)
        if rest == ["config"] and method == "GET":
            self.config_queries.append(query)
            return 200, {"defaults": {}, "overrides": {"prefix": self.prefix}}
        if rest[:1] != [self.prefix]:
            raise HttpError(404, "NoSuchEndpointException", f"no endpoint {path} (prefix is {self.prefix})")
        rest = rest[1:]
        with self.lock:
            return self._route(method, rest, query, body)

    def _route(self, method: str, rest: list[str], query: dict[str, list[str]], body: bytes):
        cat = self.catalog
        if rest == ["namespaces"]:
            if method == "GET":
                parent = tuple(query["parent"][0].split(NAMESPACE_SEPARATOR)) if "parent" in query else ()
                return 200, {"namespaces": [list(ns) for ns in cat.list_namespaces(parent)]}
            if method == "POST":
                req = json.loads(body)
                ns = tuple(req["namespace"])
                cat.create_namespace(ns, req.get("properties") or {})
                return 200, {"namespace": list(ns), "properties": cat.load_namespace_properties(ns)}
        if len(rest) == 2 and rest[0] == "namespaces":
            ns = tuple(rest[1].split(NAMESPACE_SEPARATOR))
            if method == "GET":
                return 200, {"namespace": list(ns), "properties": cat.load_namespace_properties(ns)}
            if method == "HEAD":
                if not cat.namespace_exists(ns):
                    raise HttpError(404, "NoSuchNamespaceException", f"namespace {ns} does not exist")
                return 204, None
            if method == "DELETE":
                cat.drop_namespace(ns)
                return 204, None
        if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "tables":
            ns = tuple(rest[1].split(NAMESPACE_SEPARATOR))
            if method == "GET":
                if not cat.namespace_exists(ns):
                    raise HttpError(404, "NoSuchNamespaceException", f"namespace {ns} does not exist")
                return 200, {"identifiers": [{"namespace": list(t[:-1]), "name": t[-1]} for t in cat.list_tables(ns)]}
            if method == "POST":
                return 200, self._create_table(ns, body)
        if len(rest) == 4 and rest[0] == "namespaces" and rest[2] == "tables":
            ident = (*rest[1].split(NAMESPACE_SEPARATOR), rest[3])
            if method == "GET":
                return 200, self._table_response(cat.load_table(ident))
            if method == "HEAD":
                if not cat.table_exists(ident):
                    raise HttpError(404, "NoSuchTableException", f"table {ident} does not exist")
                return 204, None
            if method == "POST":
                return self._commit(ident, body)
            if method == "DELETE":
                cat.drop_table(ident)
                return 204, None
        raise HttpError(404, "NoSuchEndpointException", f"no endpoint {method} /v1/{self.prefix}/{'/'.join(rest)}")

    def _create_table(self, ns: tuple[str, ...], body: bytes) -> dict:
        raw = json.loads(body)
        for key in ("location", "partition-spec", "write-order"):
            raw.setdefault(key, None)
        spec = raw.get("partition-spec")
        if spec is not None:
            for i, field in enumerate(spec.get("fields", [])):
                field.setdefault("field-id", 1000 + i)
        req = CreateTableRequest.model_validate(raw)
        if req.stage_create:
            raise HttpError(400, "BadRequestException", "staged creates are not supported by this test server")
        tbl = self.catalog.create_table(
            (*ns, req.name),
            schema=req.table_schema,
            location=req.location,
            partition_spec=req.partition_spec or UNPARTITIONED_PARTITION_SPEC,
            sort_order=req.write_order or UNSORTED_SORT_ORDER,
            properties=req.properties,
        )
        return self._table_response(tbl)

    def _table_response(self, tbl) -> dict:
        return json.loads(TableResponse(metadata_location=tbl.metadata_location, metadata=tbl.metadata,
                                        config=self.storage).model_dump_json())

    def _commit(self, ident: tuple[str, ...], body: bytes) -> tuple[int, dict]:
        req = CommitTableRequest.model_validate_json(body)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "conflict":
            raise HttpError(409, "CommitFailedException", "injected conflict: try again")
        tbl = self.catalog.load_table(ident)
        resp = self.catalog.commit_table(tbl, req.requirements, req.updates)
        self.commits.append([u.action for u in req.updates])
        if fault == "lose_commit_answer":
            raise HttpError(502, "BadGateway", "injected: the commit was applied, its answer lost")
        return 200, json.loads(resp.model_dump_json())


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 (and localhost), as PEM
    files: (CA certificate, server certificate, server key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def build(subject, issuer, public_key, signing_key, ca: bool):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = (b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                              x509.DNSName("localhost")]), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return b.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "floe-test-ca")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key.public_key(),
                 ca_key, ca=False)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "catalog.crt", directory / "catalog.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


ERRORS = [
    (NoSuchTableError, 404, "NoSuchTableException"),
    (NoSuchNamespaceError, 404, "NoSuchNamespaceException"),
    (TableAlreadyExistsError, 409, "AlreadyExistsException"),
    (NamespaceAlreadyExistsError, 409, "AlreadyExistsException"),
    (NamespaceNotEmptyError, 409, "NamespaceNotEmptyException"),
    (CommitFailedException, 409, "CommitFailedException"),
    (PydanticValidationError, 400, "BadRequestException"),
    (ValueError, 400, "BadRequestException"),
]


class _Handler(BaseHTTPRequestHandler):
    server_state: RestCatalogServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; the tests look at server_state.requests
        pass

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.server_state
        state.requests.append((method, url.path))
        try:
            code, answer = state.handle(method, url.path, parse_qs(url.query), body, self.headers.get("Authorization"))
        except HttpError as e:
            code, answer = e.code, {"error": {"message": e.message, "type": e.kind, "code": e.code}}
        except Exception as e:  # noqa: BLE001 - every failure becomes an answer
            code, kind = 500, "ServerError"
            for cls, c, k in ERRORS:
                if isinstance(e, cls):
                    code, kind = c, k
                    break
            if code == 500:
                traceback.print_exc()
            answer = {"error": {"message": f"{type(e).__name__}: {e}", "type": kind, "code": code}}
        data = b"" if answer is None or method == "HEAD" else json.dumps(answer).encode()
        self.send_response(code)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_HEAD(self):  # noqa: N802
        self._serve("HEAD")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--db", default="rest-catalog.db")
    parser.add_argument("--warehouse", default=None)
    parser.add_argument("--token", default=None)
    parser.add_argument("--credential", default=None)
    args = parser.parse_args()
    server = RestCatalogServer(Path(args.db).resolve(), args.warehouse, port=args.port, token=args.token,
                               credential=args.credential)
    print(f"Iceberg REST catalog on {server.uri} (prefix {server.prefix})", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
