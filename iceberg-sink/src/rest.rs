//! An external Iceberg REST catalog (`--iceberg-catalog rest`).
//!
//! iceberg-catalog-rest's `RestCatalog` does the catalog's config,
//! namespaces, and table create / load / exists / drop. Floe adds three
//! things it lacks:
//!
//! - **Storage.** Tables read and write through Floe's own object store
//!   (the [`Warehouse`]), handed to `RestCatalog` as its storage factory. The
//!   catalog's storage properties and vended credentials are not used, so a
//!   table must live under the warehouse root; one outside it is refused
//!   with the reason. New tables get the location the server chooses (from
//!   its warehouse); only when the server refuses to choose (HTTP 400) does
//!   Floe ask for `<warehouse root>/<namespace>/<table>`.
//! - **Commits.** iceberg's `TableCommit` cannot be built outside iceberg, and
//!   Floe commits its own requirements and updates (schema changes with type
//!   promotion, compaction's replace snapshot), so [`RestTableCatalog`] posts
//!   the REST spec's `CommitTableRequest` itself, with the same
//!   authentication:
//!   1. When the updates add a snapshot carrying a
//!      [`COMMIT_ID_KEY`](crate::catalog::COMMIT_ID_KEY), load
//!      the table; if a snapshot already carries that id, an earlier attempt
//!      succeeded and its answer was lost: answer with the table as it is.
//!   2. `POST {uri}/v1/{prefix}/namespaces/{namespace}/tables/{table}` with
//!      `{"identifier", "requirements", "updates"}`.
//!   3. 200: the answer's `metadata` and `metadata-location` are the table.
//!      409: a requirement failed because another writer committed first,
//!      [`ErrorKind::CatalogCommitConflicts`] (retryable). 5xx, or no answer:
//!      the outcome is unknown, [`ErrorKind::Unexpected`]; retryable when the
//!      commit has an id, since step 1 makes a retry exactly-once.
//! - **Token refresh.** With OAuth2 client credentials, iceberg-catalog-rest
//!   0.10.1 exchanges them for a token once and never refreshes it; on a 401
//!   both it and Floe's own requests get a new token and try once more.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iceberg::io::StorageFactory;
use iceberg::spec::{FormatVersion, TableMetadata};
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, Error, ErrorKind, Namespace, NamespaceIdent, Result, Runtime,
    TableCommit, TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use iceberg_catalog_rest::{
    CommitTableRequest, CommitTableResponse, ErrorResponse, REST_CATALOG_PROP_URI,
    REST_CATALOG_PROP_WAREHOUSE, RestCatalog, RestCatalogBuilder,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::catalog::{DEFAULT_PROPERTIES, TableCatalog, commit_id_of, has_commit};
use crate::storage::{Warehouse, WarehouseStorageFactory};

/// Connecting to the catalog gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A request without an answer after this long fails (a commit's outcome is
/// then unknown).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach the catalog. `Debug` hides the token and the credential.
#[derive(Clone, Default)]
pub struct RestSettings {
    /// The catalog's base URI, `http(s)://host[:port][/path]`, without `/v1`.
    pub uri: String,
    /// The REST `warehouse` property: which of the server's warehouses.
    pub warehouse: Option<String>,
    /// A bearer token sent as is.
    pub token: Option<String>,
    /// OAuth2 client credentials, `client_id:client_secret` (or a secret
    /// alone), exchanged for a token at the catalog's token endpoint.
    pub credential: Option<String>,
    /// Other REST catalog properties: `scope`, `oauth2-server-uri`,
    /// `audience`, `resource`, `header.<name>`, ...
    pub properties: HashMap<String, String>,
}

impl std::fmt::Debug for RestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSettings")
            .field("uri", &self.uri)
            .field("warehouse", &self.warehouse)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("credential", &self.credential.as_ref().map(|_| "<hidden>"))
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RestSettings {
    /// The properties iceberg-catalog-rest is loaded with.
    fn catalog_properties(&self) -> HashMap<String, String> {
        let mut props = self.properties.clone();
        props.insert(REST_CATALOG_PROP_URI.into(), self.uri.clone());
        if let Some(w) = &self.warehouse {
            props.insert(REST_CATALOG_PROP_WAREHOUSE.into(), w.clone());
        }
        if let Some(t) = &self.token {
            props.insert("token".into(), t.clone());
        }
        if let Some(c) = &self.credential {
            props.insert("credential".into(), c.clone());
        }
        props
    }
}

/// `GET /v1/config`: properties the server sets under and over the client's.
#[derive(Debug, Default, Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

/// The client's properties merged with the server's config, as
/// iceberg-catalog-rest merges them: defaults < client < overrides.
fn merge_config(
    client: &HashMap<String, String>,
    server: ConfigResponse,
) -> HashMap<String, String> {
    let mut merged = server.defaults;
    merged.extend(client.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged.extend(server.overrides);
    merged
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The REST path of a table under `base` (`{uri}/v1[/{prefix}]`); the parts
/// of a nested namespace are joined by the unit separator, as the spec says.
fn table_url(base: &str, ident: &TableIdent) -> String {
    let namespace: Vec<String> = ident.namespace.iter().map(|p| encode_segment(p)).collect();
    format!(
        "{base}/namespaces/{}/tables/{}",
        namespace.join("%1F"),
        encode_segment(&ident.name)
    )
}

/// The message of an error answer: the spec's `{"error": {"message"}}`, else
/// the body as it came.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => Error::from(e).message().to_string(),
        Err(_) => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(500)
            .collect(),
    }
}

/// Whether iceberg-catalog-rest reported an HTTP 401 (it keeps the status
/// only in the error's context).
fn is_unauthorized(e: &Error) -> bool {
    e.to_string().contains("status: 401")
}

/// Bearer-token authentication, as iceberg-catalog-rest does it: a fixed
/// token wins; otherwise client credentials are exchanged for one, cached
/// until the catalog answers 401.
struct Auth {
    token: Option<String>,
    credential: Option<(Option<String>, String)>,
    token_endpoint: String,
    oauth_params: Vec<(String, String)>,
    exchanged: Mutex<Option<String>>,
}

impl Auth {
    fn new(props: &HashMap<String, String>, uri: &str) -> Auth {
        let credential = props.get("credential").map(|c| match c.split_once(':') {
            Some((id, secret)) => (Some(id.to_string()), secret.to_string()),
            None => (None, c.clone()),
        });
        let mut oauth_params = vec![(
            "scope".to_string(),
            props
                .get("scope")
                .cloned()
                .unwrap_or_else(|| "catalog".into()),
        )];
        for key in ["audience", "resource"] {
            if let Some(v) = props.get(key) {
                oauth_params.push((key.to_string(), v.clone()));
            }
        }
        Auth {
            token: props.get("token").cloned(),
            credential,
            token_endpoint: props
                .get("oauth2-server-uri")
                .cloned()
                .unwrap_or_else(|| format!("{uri}/v1/oauth/tokens")),
            oauth_params,
            exchanged: Mutex::new(None),
        }
    }

    /// Whether a 401 may be cured by exchanging the credential again.
    fn can_refresh(&self) -> bool {
        self.token.is_none() && self.credential.is_some()
    }

    fn forget(&self) {
        *self.exchanged.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn bearer(&self, http: &reqwest::Client) -> Result<Option<String>> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        let Some((client_id, secret)) = &self.credential else {
            return Ok(None);
        };
        if let Some(t) = self
            .exchanged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(Some(t));
        }
        let mut form: Vec<(String, String)> = vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_secret".into(), secret.clone()),
        ];
        if let Some(id) = client_id {
            form.push(("client_id".into(), id.clone()));
        }
        form.extend(self.oauth_params.iter().cloned());
        let endpoint = &self.token_endpoint;
        let response = http.post(endpoint).form(&form).send().await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "cannot reach the OAuth2 token endpoint {endpoint}: {}",
                    crate::error_chain(&e)
                ),
            )
            .with_retryable(true)
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "OAuth2 token endpoint {endpoint}: {}",
                    crate::error_chain(&e)
                ),
            )
        })?;
        if status != StatusCode::OK {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "the OAuth2 token endpoint {endpoint} refused the client credential ({status}): {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            ));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
        }
        let token = serde_json::from_slice::<TokenResponse>(&body)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("invalid answer from the OAuth2 token endpoint {endpoint}"),
                )
                .with_source(e)
            })?
            .access_token;
        *self.exchanged.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(Some(token))
    }
}

/// An HTTP answer: status and body.
struct Answer {
    status: StatusCode,
    body: bytes::Bytes,
}

/// The catalog: iceberg-catalog-rest for everything but commits, Floe's own
/// requests for commits (see the module docs).
pub struct RestTableCatalog {
    inner: RestCatalog,
    http: reqwest::Client,
    /// The URI as configured, for messages.
    uri: String,
    /// `{uri}/v1[/{prefix}]` after the server's config.
    base: String,
    /// `header.*` properties, sent with every request.
    headers: HeaderMap,
    auth: Auth,
    warehouse: Warehouse,
    warehouse_name: Option<String>,
}

impl std::fmt::Debug for RestTableCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestTableCatalog")
            .field("uri", &self.uri)
            .field("base", &self.base)
            .field("warehouse", &self.warehouse_name)
            .field("storage", &self.warehouse.root())
            .finish()
    }
}

impl RestTableCatalog {
    /// Connects to the catalog at `settings.uri`: reads its config (which
    /// proves it reachable and the credentials accepted) and prepares
    /// iceberg-catalog-rest with Floe's storage. Tables live in `warehouse`.
    pub async fn connect(settings: RestSettings, warehouse: Warehouse) -> Result<RestTableCatalog> {
        let uri = settings.uri.trim().trim_end_matches('/').to_string();
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "invalid Iceberg REST catalog URI {uri:?}: it must start with http:// or https://"
                ),
            ));
        }
        let settings = RestSettings {
            uri: uri.clone(),
            ..settings
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Unexpected, "cannot build the HTTP client").with_source(e)
            })?;
        let client_props = settings.catalog_properties();
        let mut catalog = RestTableCatalog {
            inner: RestCatalogBuilder::default()
                .with_client(http.clone())
                .with_storage_factory(storage_factory(&warehouse)?)
                .with_runtime(Runtime::try_current()?)
                .load("floe", client_props.clone())
                .await?,
            http,
            base: format!("{uri}/v1"),
            headers: headers_of(&client_props)?,
            auth: Auth::new(&client_props, &uri),
            uri,
            warehouse,
            warehouse_name: settings.warehouse.clone(),
        };

        let mut config_url = format!("{}/v1/config", catalog.uri);
        if let Some(w) = &settings.warehouse {
            config_url.push_str(&format!("?warehouse={}", encode_segment(w)));
        }
        let answer = catalog
            .send(Method::GET, &config_url, None)
            .await
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "cannot reach the Iceberg REST catalog at {}: {}",
                        catalog.uri,
                        e.message()
                    ),
                )
            })?;
        if answer.status != StatusCode::OK {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "the Iceberg REST catalog at {} answered {} to GET /v1/config: {}",
                    catalog.uri,
                    answer.status,
                    error_message(&answer.body)
                ),
            ));
        }
        let config: ConfigResponse = serde_json::from_slice(&answer.body).map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "the Iceberg REST catalog at {} answered GET /v1/config with invalid JSON",
                    catalog.uri
                ),
            )
            .with_source(e)
        })?;
        let merged = merge_config(&client_props, config);
        let effective_uri = merged
            .get(REST_CATALOG_PROP_URI)
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| catalog.uri.clone());
        catalog.base = match merged.get("prefix").filter(|p| !p.is_empty()) {
            Some(prefix) => format!("{effective_uri}/v1/{prefix}"),
            None => format!("{effective_uri}/v1"),
        };
        catalog.headers = headers_of(&merged)?;
        // The server may name the token endpoint or the scope; keep a token
        // already exchanged.
        let exchanged = catalog
            .auth
            .exchanged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        catalog.auth = Auth::new(&merged, &effective_uri);
        *catalog
            .auth
            .exchanged
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = exchanged;
        Ok(catalog)
    }

    /// The catalog's URI as configured.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// One authenticated request; a 401 with client credentials gets a new
    /// token and one more try (a 401 means nothing was done).
    async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> Result<Answer> {
        let mut refreshed = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
                .headers(self.headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            if let Some(token) = self.auth.bearer(&self.http).await? {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let fail = |e: reqwest::Error| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("{method} {url}: {}", crate::error_chain(&e)),
                )
                .with_retryable(true)
            };
            let response = request.send().await.map_err(fail)?;
            let status = response.status();
            let body = response.bytes().await.map_err(fail)?;
            if status == StatusCode::UNAUTHORIZED && self.auth.can_refresh() && !refreshed {
                self.auth.forget();
                refreshed = true;
                continue;
            }
            return Ok(Answer { status, body });
        }
    }

    /// Runs a call of iceberg-catalog-rest; after a 401 with client
    /// credentials, gets it a new token and runs the call once more.
    async fn authed<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match call().await {
            Err(e) if is_unauthorized(&e) && self.auth.can_refresh() => {
                tracing::info!(catalog = %self.uri, "the REST catalog answered 401; getting a new token");
                self.inner.regenerate_token().await?;
                call().await
            }
            other => other,
        }
    }

    /// `table` unless its location is outside the warehouse, where Floe's
    /// storage cannot reach it.
    fn checked(&self, ident: &TableIdent, table: Table) -> Result<Table> {
        let location = table.metadata().location();
        if self.warehouse.key(location).is_err() {
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!(
                    "table {ident} of the REST catalog at {} lives at {location}, outside Floe's \
                     Iceberg warehouse {}: Floe reads and writes table files only through its own \
                     object store, so set --iceberg-warehouse to a URL that holds the catalog's \
                     table locations",
                    self.uri,
                    self.warehouse.root()
                ),
            ));
        }
        Ok(table)
    }

    async fn post_commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
        has_id: bool,
    ) -> Result<Table> {
        let url = table_url(&self.base, ident);
        let request = CommitTableRequest {
            identifier: Some(ident.clone()),
            requirements,
            updates,
        };
        let body = serde_json::to_vec(&request).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot serialize the commit to table {ident}"),
            )
            .with_source(e)
        })?;
        let unknown = |what: String| {
            Error::new(
                ErrorKind::Unexpected,
                format!("commit to table {ident}: outcome unknown: {what}"),
            )
            .with_retryable(has_id)
        };
        let answer = match self.send(Method::POST, &url, Some(body)).await {
            Ok(a) => a,
            Err(e) => return Err(unknown(e.message().to_string())),
        };
        let message = || error_message(&answer.body);
        match answer.status {
            StatusCode::OK => {}
            StatusCode::CONFLICT => {
                return Err(Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!(
                        "commit to table {ident}: another writer committed first: {}",
                        message()
                    ),
                )
                .with_retryable(true));
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::new(
                    ErrorKind::TableNotFound,
                    format!("commit to table {ident}: no such table: {}", message()),
                ));
            }
            s if s.is_server_error() => {
                return Err(unknown(format!("the catalog answered {s}: {}", message())));
            }
            s => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!(
                        "commit to table {ident}: the catalog answered {s}: {}",
                        message()
                    ),
                ));
            }
        }
        let response: CommitTableResponse = serde_json::from_slice(&answer.body).map_err(|e| {
            unknown("the catalog's answer is not a CommitTableResponse".into()).with_source(e)
        })?;
        let table =
            TableCatalog::build_table(self, ident, response.metadata_location, response.metadata)?;
        self.checked(ident, table)
    }
}

/// Floe's storage factory for the warehouse, found the way iceberg finds
/// serialized storage: by the warehouse's root URL in the process registry.
fn storage_factory(warehouse: &Warehouse) -> Result<Arc<dyn StorageFactory>> {
    let factory: WarehouseStorageFactory =
        serde_json::from_value(serde_json::json!({ "root": warehouse.root() })).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("no storage for warehouse {}", warehouse.root()),
            )
            .with_source(e)
        })?;
    Ok(Arc::new(factory))
}

/// The `header.<name>` properties as headers.
fn headers_of(props: &HashMap<String, String>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (key, value) in props {
        let Some(name) = key.strip_prefix("header.") else {
            continue;
        };
        let invalid = |what: &str| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("invalid REST catalog property {key}: invalid header {what}"),
            )
        };
        headers.insert(
            HeaderName::try_from(name).map_err(|_| invalid("name"))?,
            HeaderValue::try_from(value.as_str()).map_err(|_| invalid("value"))?,
        );
    }
    Ok(headers)
}

/// `creation` again (`TableCreation` is not `Clone`).
fn copy_creation(c: &TableCreation) -> TableCreation {
    TableCreation {
        name: c.name.clone(),
        location: c.location.clone(),
        schema: c.schema.clone(),
        partition_spec: c.partition_spec.clone(),
        sort_order: c.sort_order.clone(),
        properties: c.properties.clone(),
        format_version: c.format_version,
    }
}

#[async_trait]
impl TableCatalog for RestTableCatalog {
    async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        let commit_id = commit_id_of(&updates);
        if let Some(id) = &commit_id {
            let current = self.load_table(ident).await?;
            if has_commit(current.metadata(), id) {
                tracing::info!(table = %ident, commit_id = %id, "commit already applied; answering with the table as is");
                return Ok(current);
            }
        }
        if updates.is_empty() {
            // Nothing to change (an expiry with nothing to expire): check the
            // requirements here instead of asking the catalog to write an
            // unchanged table.
            let current = self.load_table(ident).await?;
            for requirement in &requirements {
                requirement.check(Some(current.metadata()))?;
            }
            return Ok(current);
        }
        self.post_commit(ident, requirements, updates, commit_id.is_some())
            .await
    }

    fn build_table(
        &self,
        ident: &TableIdent,
        metadata_location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        crate::catalog::table_with(self.warehouse.file_io(), ident, metadata_location, metadata)
    }

    /// The catalog chooses where a table lives.
    fn describe_location(&self, _ident: &TableIdent) -> String {
        format!("{} (REST catalog)", self.uri)
    }

    fn describe(&self) -> String {
        match &self.warehouse_name {
            Some(w) => format!("rest {} (warehouse {w})", self.uri),
            None => format!("rest {}", self.uri),
        }
    }
}

#[async_trait]
impl Catalog for RestTableCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.authed(|| self.inner.list_namespaces(parent)).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.authed(|| self.inner.create_namespace(namespace, properties.clone()))
            .await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.authed(|| self.inner.get_namespace(namespace)).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.authed(|| self.inner.namespace_exists(namespace)).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.authed(|| self.inner.update_namespace(namespace, properties.clone()))
            .await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.authed(|| self.inner.drop_namespace(namespace)).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.authed(|| self.inner.list_tables(namespace)).await
    }

    /// Creates the table where the server chooses; when the server refuses
    /// to choose (400), at `<warehouse root>/<namespace>/<table>`.
    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        mut creation: TableCreation,
    ) -> Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        creation.format_version = FormatVersion::V2;
        creation
            .properties
            .entry("format-version".into())
            .or_insert_with(|| "2".into());
        for (key, value) in DEFAULT_PROPERTIES {
            creation
                .properties
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        let result = self
            .authed(|| self.inner.create_table(namespace, copy_creation(&creation)))
            .await;
        let table = match result {
            Err(e) if creation.location.is_none() && e.to_string().contains("status: 400") => {
                let parts: Vec<&str> = namespace.iter().map(String::as_str).collect();
                let location =
                    self.warehouse
                        .url(&format!("{}/{}", parts.join("/"), creation.name));
                tracing::info!(table = %ident, %location, error = %e, "the REST catalog did not choose a table location; asking for one in Floe's warehouse");
                creation.location = Some(location);
                self.authed(|| self.inner.create_table(namespace, copy_creation(&creation)))
                    .await?
            }
            other => other?,
        };
        self.checked(&ident, table)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        let loaded = self.authed(|| self.inner.load_table(table)).await?;
        self.checked(table, loaded)
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.authed(|| self.inner.drop_table(table)).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.authed(|| self.inner.purge_table(table)).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.authed(|| self.inner.table_exists(table)).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.authed(|| self.inner.rename_table(src, dest)).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        let registered = self
            .authed(|| self.inner.register_table(table, metadata_location.clone()))
            .await?;
        self.checked(table, registered)
    }

    /// Commits through [`TableCatalog::commit`], exactly once per commit id.
    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let requirements = commit.take_requirements();
        let updates = commit.take_updates();
        TableCatalog::commit(self, &ident, requirements, updates).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_encode_each_segment() {
        let ident = TableIdent::new(
            NamespaceIdent::from_vec(vec!["a".into(), "b c".into()]).unwrap(),
            "orders~dlq".into(),
        );
        assert_eq!(
            table_url("http://h:1/v1/p", &ident),
            "http://h:1/v1/p/namespaces/a%1Fb%20c/tables/orders~dlq"
        );
    }

    #[test]
    fn server_overrides_win_and_defaults_yield() {
        let client = HashMap::from([
            ("uri".to_string(), "http://client".to_string()),
            ("scope".to_string(), "mine".to_string()),
        ]);
        let server = ConfigResponse {
            defaults: HashMap::from([
                ("prefix".to_string(), "wh1".to_string()),
                ("scope".to_string(), "theirs".to_string()),
            ]),
            overrides: HashMap::from([("uri".to_string(), "http://server".to_string())]),
        };
        let merged = merge_config(&client, server);
        assert_eq!(merged["uri"], "http://server");
        assert_eq!(merged["scope"], "mine");
        assert_eq!(merged["prefix"], "wh1");
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let settings = RestSettings {
            uri: "http://h".into(),
            token: Some("t0ps3cret".into()),
            credential: Some("id:s3cret".into()),
            ..Default::default()
        };
        let text = format!("{settings:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("<hidden>"), "{text}");
    }

    /// The commit body is the REST spec's `CommitTableRequest`.
    #[test]
    fn commit_request_json() {
        let ident = TableIdent::new(NamespaceIdent::new("floe".into()), "orders".into());
        let request = CommitTableRequest {
            identifier: Some(ident),
            requirements: vec![
                TableRequirement::UuidMatch {
                    uuid: uuid::Uuid::nil(),
                },
                TableRequirement::CurrentSchemaIdMatch {
                    current_schema_id: 3,
                },
            ],
            updates: vec![TableUpdate::SetCurrentSchema { schema_id: -1 }],
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "identifier": {"namespace": ["floe"], "name": "orders"},
                "requirements": [
                    {"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"},
                    {"type": "assert-current-schema-id", "current-schema-id": 3},
                ],
                "updates": [{"action": "set-current-schema", "schema-id": -1}],
            })
        );
    }

    /// The answer's metadata and metadata location become the table.
    #[test]
    fn commit_response_json() {
        let metadata = serde_json::json!({
            "format-version": 2,
            "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": "s3://bucket/floe/orders",
            "last-sequence-number": 0,
            "last-updated-ms": 1_700_000_000_000_i64,
            "last-column-id": 1,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "x", "required": false, "type": "long"}]}],
            "default-spec-id": 0,
            "partition-specs": [{"spec-id": 0, "fields": []}],
            "last-partition-id": 999,
            "default-sort-order-id": 0,
            "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": {},
            "snapshots": [],
            "snapshot-log": [],
            "metadata-log": [],
        });
        let body = serde_json::json!({
            "metadata-location": "s3://bucket/floe/orders/metadata/00001-x.metadata.json",
            "metadata": metadata,
        });
        let response: CommitTableResponse = serde_json::from_value(body).unwrap();
        assert_eq!(
            response.metadata_location,
            "s3://bucket/floe/orders/metadata/00001-x.metadata.json"
        );
        assert_eq!(response.metadata.location(), "s3://bucket/floe/orders");
    }

    #[test]
    fn error_answers_give_their_message() {
        let body =
            br#"{"error": {"message": "Requirement failed: branch main has changed", "type": "CommitFailedException", "code": 409}}"#;
        assert_eq!(
            error_message(body),
            "Requirement failed: branch main has changed"
        );
        assert_eq!(error_message(b"  bad gateway \n"), "bad gateway");
    }
}
