//! One-click sign-in, end to end exactly as an MCP client does it (discovery from the 401,
//! metadata, registration, PKCE authorization with `resource`, sign-in, consent with a scope
//! unticked, token exchange, MCP calls, refresh, revocation), and one test per attack.

use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Gateway, call, connect, ok, text};

pub(crate) const REDIRECT: &str = "http://127.0.0.1:33333/callback";
pub(crate) const VERIFIER: &str =
    "a-long-random-code-verifier-of-more-than-forty-three-characters-0123";

pub(crate) fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn browser() -> reqwest::Client {
    browser_from("127.0.0.1")
}

/// A browser whose connections come from `ip` (any 127.0.0.0/8 address reaches the gateway
/// on Linux), to act as different client addresses.
pub(crate) fn browser_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The value of a hidden form field in a page.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An authorization request of `client_id` with PKCE, as a client would open it.
pub(crate) fn authorize_url_for(base: &str, client_id: &str) -> reqwest::Url {
    reqwest::Url::parse_with_params(
        &format!("{base}/oauth/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap()
}

/// Serves a client metadata document named `client_name` on loopback; returns its URL (the
/// client id) and the server task.
pub(crate) async fn serve_metadata(client_name: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client_id = format!("http://{addr}/oauth/client.json");
    let doc =
        json!({"client_id": client_id, "client_name": client_name, "redirect_uris": [REDIRECT]});
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route(
                "/oauth/client.json",
                axum::routing::get(move || async move { axum::Json(doc) }),
            ),
        )
        .await
        .unwrap();
    });
    (client_id, server)
}

pub(crate) struct Flow {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) client_id: String,
}

impl Flow {
    pub(crate) async fn register(gw: &Gateway) -> Self {
        Self::register_with(gw, browser()).await
    }

    pub(crate) async fn register_with(gw: &Gateway, http: reqwest::Client) -> Self {
        let base = gw.running.app.base_url.clone();
        let reg: Value = http
            .post(format!("{base}/oauth/register"))
            .json(&json!({"client_name": "Claude Desktop", "redirect_uris": [REDIRECT]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let client_id = reg["client_id"].as_str().unwrap().to_string();
        Self {
            http,
            base,
            client_id,
        }
    }

    fn authorize_url(&self, gw: &Gateway, extra: &[(&str, &str)]) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", self.base)).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &self.client_id);
            q.append_pair("redirect_uri", REDIRECT);
            q.append_pair("state", "st-42");
            q.append_pair("resource", &gw.url());
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Opens the sign-in page of a new authorization (of `scope`, or every scope); returns
    /// the page.
    async fn open_sign_in(&self, gw: &Gateway, scope: Option<&str>) -> String {
        let challenge = challenge(VERIFIER);
        let mut query = vec![
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        query.extend(scope.map(|s| ("scope", s)));
        let page = self
            .http
            .get(self.authorize_url(gw, &query))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }

    /// Opens the sign-in page of a new authorization; returns its flow and CSRF token.
    pub(crate) async fn sign_in_page(&self, gw: &Gateway) -> (String, String) {
        let html = self.open_sign_in(gw, None).await;
        (hidden(&html, "flow"), hidden(&html, "csrf"))
    }

    /// Posts the sign-in form of `flow`.
    pub(crate) async fn sign_in(
        &self,
        (flow, csrf): &(String, String),
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth/authorize/sign-in", self.base))
            .form(&[
                ("flow", flow.as_str()),
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Authorize `requested` and sign in as `who`; returns the flow's form fields and the
    /// consent page.
    pub(crate) async fn consent_page_as(
        &self,
        gw: &Gateway,
        requested: &str,
        who: (&str, &str),
    ) -> ((String, String), String) {
        let html = self.open_sign_in(gw, Some(requested)).await;
        let form = (hidden(&html, "flow"), hidden(&html, "csrf"));
        let page = self.sign_in(&form, who.0, who.1).await;
        assert_eq!(page.status(), 200);
        (form, page.text().await.unwrap())
    }

    /// Posts the consent form of `flow` with `fields` (and the flow and CSRF fields).
    pub(crate) async fn post_consent(
        &self,
        (flow, csrf): &(String, String),
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("flow", flow), ("csrf", csrf)];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}/oauth/authorize/consent", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Authorize, sign in and approve the given scopes; returns the redirect location.
    pub(crate) async fn approve(&self, gw: &Gateway, requested: &str, tick: &[&str]) -> String {
        let html = self.open_sign_in(gw, Some(requested)).await;
        assert!(html.contains("Claude Desktop"), "{html}");
        let form = (hidden(&html, "flow"), hidden(&html, "csrf"));
        let consent = self
            .sign_in(&form, "owner@lotusflow.example", "lotus-owner-demo")
            .await;
        let (flow, csrf) = form;
        assert_eq!(consent.status(), 200);
        let html = consent.text().await.unwrap();
        assert!(
            html.contains("Allow Claude Desktop to use your studio?"),
            "{html}"
        );
        assert!(html.contains("Lotus Flow Yoga"), "{html}");
        let mut form: Vec<(&str, &str)> =
            vec![("flow", &flow), ("csrf", &csrf), ("action", "approve")];
        for s in tick {
            form.push(("scope", s));
        }
        let done = self
            .http
            .post(format!("{}/oauth/authorize/consent", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(done.status().is_redirection(), "{}", done.status());
        done.headers()["location"].to_str().unwrap().to_string()
    }

    pub(crate) async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A grant of `classes:read`, its tokens exchanged: returns the access token.
    pub(crate) async fn connect(&self, gw: &Gateway) -> String {
        let location = self.approve(gw, "classes:read", &["classes:read"]).await;
        let code = query_param(&location, "code").unwrap();
        let (status, tokens) = self.exchange(gw, &code, VERIFIER).await;
        assert_eq!(status, 200, "{tokens}");
        tokens["access_token"].as_str().unwrap().to_string()
    }

    /// `grant_type=refresh_token` with `refresh`.
    pub(crate) async fn refresh(&self, refresh: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &self.client_id),
        ])
        .await
    }

    pub(crate) async fn exchange(&self, gw: &Gateway, code: &str, verifier: &str) -> (u16, Value) {
        let mcp = gw.url();
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", &self.client_id),
            ("code_verifier", verifier),
            ("resource", &mcp),
        ])
        .await
    }
}

pub(crate) async fn status_with(gw: &Gateway, token: &str) -> u16 {
    crate::harness::post_mcp(&gw.url(), token, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})).await
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_whole_flow_as_an_mcp_client_does_it() {
    let gw = Gateway::start().await;
    let http = browser();
    // 1. Discover from the 401.
    let resp = http.post(gw.url()).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge_header = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let prm_url = challenge_header.split('"').nth(1).unwrap().to_string();
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], gw.url());
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let meta: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], issuer);
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert!(meta["scope_descriptions"]["classes:write"].is_string());

    // 2. Register, authorize with PKCE and resource, sign in, untick coupons:write, approve.
    let flow = Flow::register(&gw).await;
    let location = flow
        .approve(
            &gw,
            "classes:read classes:write coupons:write",
            &["classes:read", "classes:write"],
        )
        .await;
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(issuer));
    let code = query_param(&location, "code").unwrap();

    // 3. Exchange.
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "classes:read classes:write");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // 4. Call /mcp: the grant is a principal with exactly the ticked scopes.
    let client = connect(&gw.url(), &access).await;
    let me = ok(call(&client, "whoami", json!({})).await, "whoami");
    assert_eq!(me["principal"]["kind"], "grant");
    assert_eq!(me["principal"]["name"], "Claude Desktop");
    assert_eq!(me["studio"]["id"], "std_lotus");
    assert_eq!(me["scopes"], json!(["classes:read", "classes:write"]));
    ok(
        call(&client, "list_classes", json!({"limit": 1})).await,
        "list_classes",
    );
    // The unticked write scope is refused.
    let refused = call(
        &client,
        "create_coupon",
        json!({"code": "SPRING20", "percent_off": 20}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(
        text(&refused),
        "create_coupon needs the `coupons:write` scope, which this connection was not granted. Nothing was changed."
    );
    client.cancel().await.unwrap();

    // 5. Refresh rotates both tokens.
    let (status, rotated) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &flow.client_id),
        ])
        .await;
    assert_eq!(status, 200, "{rotated}");
    let access2 = rotated["access_token"].as_str().unwrap().to_string();
    assert_ne!(access2, access);
    assert_eq!(status_with(&gw, &access2).await, 200);

    // 6. Revoke (RFC 7009): the grant's tokens fail on their next request.
    let r = flow
        .http
        .post(format!("{}/oauth/revoke", flow.base))
        .form(&[
            ("token", access2.as_str()),
            ("client_id", flow.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_with(&gw, &access2).await, 401);
    assert_eq!(status_with(&gw, &access).await, 401);
    gw.stop().await;
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    for extra in [
        vec![],
        vec![
            ("code_challenge", "x".repeat(43)),
            ("code_challenge_method", "plain".to_string()),
        ],
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = flow
            .http
            .get(flow.authorize_url(&gw, &extra))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection());
        let location = r.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some("invalid_request"),
            "{location}"
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("st-42"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_verifier_a_reused_code_and_a_wrong_redirect_are_refused() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let code = query_param(
        &flow.approve(&gw, "classes:read", &["classes:read"]).await,
        "code",
    )
    .unwrap();
    let (status, body) = flow
        .exchange(
            &gw,
            &code,
            "the-wrong-verifier-the-wrong-verifier-the-wrong-verifier",
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // The failed attempt used the code up.
    let (status, body) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // Code reuse after a success revokes what the first exchange issued.
    let code = query_param(
        &flow.approve(&gw, "classes:read", &["classes:read"]).await,
        "code",
    )
    .unwrap();
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(status_with(&gw, access).await, 200);
    let (status, body) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(status, 400);
    assert_eq!(status_with(&gw, access).await, 401);

    // A redirect URI that was not registered never gets a redirect.
    let r = flow
        .http
        .get(
            flow.authorize_url(&gw, &[])
                .replace("33333%2Fcallback", "33333%2Fother"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not one this application registered")
    );
    // A native client whose callback port was busy comes back on another loopback port
    // (RFC 8252 §7.3): the same URI on any port is accepted; another host is not.
    let pkce = challenge(VERIFIER);
    let with_pkce = [
        ("code_challenge", pkce.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = flow
        .http
        .get(
            flow.authorize_url(&gw, &with_pkce)
                .replace("33333", "44444"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another loopback port");
    assert!(r.text().await.unwrap().contains("Sign in to your studio"));
    let r = flow
        .http
        .get(
            flow.authorize_url(&gw, &with_pkce)
                .replace("127.0.0.1%3A33333", "localhost%3A33333"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "another host");
    gw.stop().await;
}

#[tokio::test]
async fn tokens_are_bound_to_this_resource() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let challenge = challenge(VERIFIER);
    let r = flow
        .http
        .get(
            flow.authorize_url(
                &gw,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .replace(
                "resource=http",
                "resource=https%3A%2F%2Fother.example%2Fmcp&x=http",
            ),
        )
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_target"),
        "{location}"
    );
    // A token request naming another resource is refused too.
    let code = query_param(
        &flow.approve(&gw, "classes:read", &["classes:read"]).await,
        "code",
    )
    .unwrap();
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &flow.client_id),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    gw.stop().await;
}

/// Makes the access tokens of the newest grant expire a second ago (behind the store's back,
/// then tells the gateway's credential cache, as a revocation does); returns the grant's id.
async fn expire_latest_grant(gw: &Gateway) -> String {
    let grants = &gw.running.app.oauth.grants;
    let grant = grants
        .list(flowgate::store::Within::AllStudios)
        .await
        .unwrap()[0]
        .id
        .clone();
    let expired = flowgate::store::Timestamp::now() - chrono::Duration::seconds(1);
    let changed = sqlx::query(
        "UPDATE oauth_tokens SET expires_at = $1 WHERE grant_id = $2 AND kind = 'access'",
    )
    .bind(expired)
    .bind(&grant)
    .execute(&gw.sqlite().await)
    .await
    .unwrap()
    .rows_affected();
    assert!(changed > 0, "grant {grant} has no access token");
    gw.running.app.store.credentials_changed().await.unwrap();
    grant
}

#[tokio::test]
async fn expired_tokens_and_reused_refresh_tokens_are_refused() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let code = query_param(
        &flow.approve(&gw, "classes:read", &["classes:read"]).await,
        "code",
    )
    .unwrap();
    let (_, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    expire_latest_grant(&gw).await;
    assert_eq!(status_with(&gw, &access).await, 401);

    let (status, fresh) = flow.refresh(&refresh).await;
    assert_eq!(status, 200);
    let new_access = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(status_with(&gw, &new_access).await, 200);
    // Using the old refresh token again revokes the whole grant.
    let (status, body) = flow.refresh(&refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(status_with(&gw, &new_access).await, 401);
    gw.stop().await;
}

#[tokio::test]
async fn the_consent_form_needs_its_csrf_token() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let challenge = challenge(VERIFIER);
    let html = flow
        .http
        .get(flow.authorize_url(
            &gw,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (f, csrf) = (hidden(&html, "flow"), hidden(&html, "csrf"));
    let html = flow
        .http
        .post(format!("{}/oauth/authorize/sign-in", flow.base))
        .form(&[
            ("flow", f.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "owner@lotusflow.example"),
            ("password", "lotus-owner-demo"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Approve"));
    for bad in ["", "forged"] {
        let r = flow
            .http
            .post(format!("{}/oauth/authorize/consent", flow.base))
            .form(&[
                ("flow", f.as_str()),
                ("csrf", bad),
                ("action", "approve"),
                ("scope", "classes:read"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    // A wrong password is refused on the sign-in page, without leaking which part was wrong.
    let r = flow
        .http
        .post(format!("{}/oauth/authorize/sign-in", flow.base))
        .form(&[
            ("flow", f.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "owner@lotusflow.example"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("do not match a studio account")
    );
    gw.stop().await;
}

#[tokio::test]
async fn client_metadata_documents_on_private_addresses_are_refused() {
    let gw = Gateway::start().await;
    let http = browser();
    let url = authorize_url_for(
        &gw.running.app.base_url,
        "https://127.0.0.1:9443/client.json",
    );
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("points at a private or loopback address"),
        "{html}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn client_metadata_documents_describe_the_client() {
    // A metadata document served on loopback, allowed in this test only.
    let (client_id, server) = serve_metadata("Cursor").await;
    let gw = Gateway::start_with(|c| c.oauth_allow_private_client_metadata = true).await;
    let http = browser();
    let url = authorize_url_for(&gw.running.app.base_url, &client_id);
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<strong>Cursor</strong>"));
    gw.stop().await;
    server.abort();
}

#[tokio::test]
async fn registration_is_limited_to_safe_redirect_uris() {
    let gw = Gateway::start().await;
    let http = browser();
    for uris in [
        json!([]),
        json!(["http://evil.example/cb"]),
        json!(["javascript:alert(1)"]),
    ] {
        let r = http
            .post(format!("{}/oauth/register", gw.running.app.base_url))
            .json(&json!({"client_name": "x", "redirect_uris": uris}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{uris}");
    }
    let r = http
        .post(format!("{}/oauth/register", gw.running.app.base_url))
        .json(&json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gw.stop().await;
}

/// Runs `tests/browser/consent.mjs` on `url` (signing in as `who`, dropping `drop`); its JSON
/// report, or `None` when chromium or playwright-core is missing outside CI.
pub(crate) async fn consent_in_browser(
    url: &str,
    shot: &std::path::Path,
    drop: &str,
    who: (&str, &str),
) -> Option<Value> {
    let root = crate::harness::crate_dir().join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = root.join("node_modules/playwright-core").exists()
        && std::path::Path::new(&chromium).exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install chromium and run `npm ci --prefix tests/browser` (.ci/run does)"
        );
        eprintln!("skipped: no chromium or playwright-core (run `npm ci --prefix tests/browser`)");
        return None;
    }
    let _ = std::fs::remove_file(shot);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("consent.mjs"))
        .arg(url)
        .arg(shot)
        .arg(drop)
        .arg(who.0)
        .arg(who.1)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser finished within two minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The scopes of the manifest, space-separated, but those in `without`.
fn all_scopes_but(without: &[&str]) -> String {
    flowgate::tool::catalog::SCOPES
        .iter()
        .map(|d| d.name)
        .filter(|s| !without.contains(s))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sign-in and consent pages in a real headless browser (Debian's chromium driven by
/// playwright-core from `tests/browser/`): the owner signs in, lowers coupons to View (drops
/// `coupons:write`) and approves; only what was chosen is granted, and the page with every
/// scope requested fits one 1366×768 laptop screen (a real screenshot).
#[tokio::test]
async fn the_consent_page_works_in_a_real_browser() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let url = flow.authorize_url(
        &gw,
        &[
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("consent.png");
    let Some(result) = consent_in_browser(
        &url,
        &shot,
        "coupons:write",
        ("owner@lotusflow.example", "lotus-owner-demo"),
    )
    .await
    else {
        return;
    };
    let location = result["redirected"]
        .as_str()
        .expect("the page redirected to the client");
    assert_eq!(query_param(location, "state").as_deref(), Some("st-42"));
    let code = query_param(location, "code").unwrap();
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], all_scopes_but(&["coupons:write"]));
    assert_eq!(
        result["disabled"],
        json!([]),
        "the owner may grant everything"
    );
    assert!(
        result["height"].as_u64().unwrap() <= 768,
        "the consent page does not fit a laptop screen: {result}"
    );

    // The screenshot is a real rendering: a PNG of the viewport's width with some weight to it.
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1366);
    assert!(
        png.len() > 20_000,
        "the screenshot is suspiciously small: {} bytes",
        png.len()
    );
    gw.stop().await;
}

/// A staff member in the same browser: the choices above their role are greyed out, and
/// approving everything they can choose grants exactly their role's ceiling.
#[tokio::test]
async fn a_staff_member_sees_the_ceiling_of_their_role_in_a_real_browser() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let url = flow.authorize_url(
        &gw,
        &[
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("consent-staff.png");
    let Some(result) = consent_in_browser(
        &url,
        &shot,
        "-",
        ("staff@lotusflow.example", "lotus-staff-demo"),
    )
    .await
    else {
        return;
    };
    let disabled: Vec<&str> = result["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for off in [
        "access.financials=read",
        "access.expenses=read",
        "access.expenses=write",
        "access.classes=write",
        "access.coupons=read",
    ] {
        assert!(
            disabled.contains(&off),
            "{off} is not greyed out: {disabled:?}"
        );
    }
    assert!(!disabled.contains(&"access.bookings=write"), "{disabled:?}");
    let code = query_param(result["redirected"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"],
        "audit:read bookings:read bookings:write classes:read content:read directory:read instructors:read locations:read members:read plans:read programs:read schedule:read"
    );
    gw.stop().await;
}

const STAFF: (&str, &str) = ("staff@lotusflow.example", "lotus-staff-demo");
const OWNER: (&str, &str) = ("owner@lotusflow.example", "lotus-owner-demo");

/// A staff member cannot obtain `financials:read` for an assistant, even by posting it
/// directly (as a scope field or as a resource choice): the answer is refused whole, nothing
/// is granted, the flow stays for another answer, and the attempt is audited. What their role
/// allows is then granted.
#[tokio::test]
async fn a_staff_member_cannot_grant_scopes_above_their_role_even_by_posting_them() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let (form, html) = flow
        .consent_page_as(&gw, "bookings:write financials:read members:write", STAFF)
        .await;
    assert!(
        html.contains("Greyed out for your role: A Staff account cannot grant this"),
        "{html}"
    );
    assert!(
        html.contains(
            r#"id="access-financials-read" name="access.financials" value="read" disabled"#
        ),
        "{html}"
    );
    // What the page chose by default is within the role: bookings only.
    assert!(
        html.contains(r#"id="access-bookings-write" name="access.bookings" value="write" checked"#),
        "{html}"
    );
    assert!(
        html.contains(
            r#"id="access-financials-none" name="access.financials" value="none" checked"#
        ),
        "{html}"
    );

    for forged in [
        vec![("action", "approve"), ("scope", "financials:read")],
        vec![
            ("action", "approve"),
            ("access.financials", "read"),
            ("access.bookings", "write"),
        ],
        vec![("action", "approve"), ("access.members", "write")],
    ] {
        let r = flow.post_consent(&form, &forged).await;
        assert_eq!(r.status(), 403, "{forged:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("A Staff account cannot grant this"), "{page}");
        assert!(page.contains("Nothing was granted"), "{page}");
    }
    let r = flow
        .post_consent(
            &form,
            &[("action", "approve"), ("access.bookings", "sideways")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("is not one flowgate offers")
    );
    assert!(
        gw.running
            .app
            .oauth
            .grants
            .list(flowgate::store::Within::AllStudios)
            .await
            .unwrap()
            .is_empty(),
        "nothing was granted"
    );
    // Newest first: the first attempt is the last row.
    let mut refused = crate::abuse::rows(&gw, "oauth.consent").await;
    refused.reverse();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused.iter().all(|r| r.outcome == "denied"));
    assert_eq!(
        refused[0].arguments.as_ref().unwrap()["above_role"],
        json!(["financials:read"])
    );
    assert_eq!(refused[0].arguments.as_ref().unwrap()["role"], "staff");
    assert_eq!(refused[0].principal_id.as_deref(), Some("usr_lotus_staff"));

    // The same flow, within the role: granted, and the grant holds exactly that.
    let r = flow
        .post_consent(
            &form,
            &[
                ("action", "approve"),
                ("access.bookings", "write"),
                ("access.financials", "none"),
            ],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let code = query_param(r.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "bookings:write");
    gw.stop().await;
}

/// The owner may grant `financials:read`; a quick choice stays within the role of whoever
/// uses it.
#[tokio::test]
async fn the_owner_can_grant_financials_and_quick_choices_respect_the_role() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let (form, html) = flow
        .consent_page_as(&gw, "financials:read bookings:write", OWNER)
        .await;
    assert!(!html.contains("disabled"), "{html}");
    assert!(html.contains("Unverified"), "{html}");
    let r = flow
        .post_consent(
            &form,
            &[("action", "approve"), ("access.financials", "read")],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let code = query_param(r.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (_, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(tokens["scope"], "financials:read");

    let (form, _) = flow
        .consent_page_as(&gw, "financials:read bookings:write classes:write", STAFF)
        .await;
    let r = flow.post_consent(&form, &[("action", "preset:full")]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"id="access-bookings-write" name="access.bookings" value="write" checked"#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="access-classes-none" name="access.classes" value="none" checked"#),
        "{html}"
    );
    gw.stop().await;
}

/// Every OAuth security event leaves a row: its `oauth.*` tool, outcome, the grant (or user or
/// client) it concerns, and the client's address; never a password, code, token or verifier.
#[tokio::test]
async fn every_oauth_event_is_audited_with_its_grant_and_address() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let location = flow
        .approve(&gw, "classes:read classes:write", &["classes:read"])
        .await;
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = flow.exchange(&gw, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = flow.refresh(&refresh).await;
    assert_eq!(status, 200, "{rotated}");
    // The old refresh token again: reuse, the grant is revoked.
    let (status, reused) = flow.refresh(&refresh).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A second grant, revoked by its client.
    let access2 = flow.connect(&gw).await;
    let r = flow
        .http
        .post(format!("{}/oauth/revoke", flow.base))
        .form(&[("token", access2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unknown tokens are answered alike and not recorded.
    for _ in 0..3 {
        let r = flow
            .http
            .post(format!("{}/oauth/revoke", flow.base))
            .form(&[("token", "flow_at_not-a-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let grants = gw
        .running
        .app
        .oauth
        .grants
        .list(flowgate::store::Within::AllStudios)
        .await
        .unwrap();
    let (second, first) = (&grants[0].id, &grants[1].id);
    let rows = |tool: &'static str| crate::abuse::rows(&gw, tool);
    let one = |mut v: Vec<flowgate::audit::Record>, what: &str| {
        assert_eq!(v.len(), 1, "{what}: {v:?}");
        let r = v.remove(0);
        assert_eq!(r.client_addr.as_deref(), Some("127.0.0.1"), "{what}");
        r
    };
    let reg = one(rows("oauth.register").await, "register");
    assert_eq!(
        (
            reg.outcome.as_str(),
            reg.principal_kind.as_deref(),
            reg.principal_id.as_deref()
        ),
        ("ok", Some("client"), Some(flow.client_id.as_str()))
    );
    let sign_ins = rows("oauth.sign_in").await;
    assert_eq!(sign_ins.len(), 2);
    for r in &sign_ins {
        assert_eq!(r.outcome, "ok");
        assert_eq!(r.principal_id.as_deref(), Some("usr_lotus_owner"));
        assert_eq!(r.principal_name.as_deref(), Some("owner@lotusflow.example"));
        assert_eq!(r.studio.as_deref(), Some("std_lotus"));
    }
    let consents = rows("oauth.consent").await;
    assert_eq!(consents.len(), 2);
    let consent = &consents[1];
    assert_eq!(consent.outcome, "ok");
    assert_eq!(consent.principal_id.as_deref(), Some(first.as_str()));
    assert_eq!(
        consent.arguments.as_ref().unwrap()["scopes"],
        json!(["classes:read"])
    );
    assert_eq!(
        consent.arguments.as_ref().unwrap()["requested"],
        json!(["classes:read", "classes:write"])
    );
    let exchanges = rows("oauth.token").await;
    assert_eq!(
        exchanges
            .iter()
            .map(|r| (r.outcome.as_str(), r.principal_id.clone().unwrap()))
            .collect::<Vec<_>>(),
        [("ok", second.clone()), ("ok", first.clone())]
    );
    let refreshed = one(rows("oauth.refresh").await, "refresh");
    assert_eq!(refreshed.outcome, "ok");
    assert_eq!(refreshed.principal_id.as_deref(), Some(first.as_str()));
    let reuse = one(rows("oauth.refresh_reuse").await, "reuse");
    assert_eq!(reuse.outcome, "denied");
    assert_eq!(reuse.principal_id.as_deref(), Some(first.as_str()));
    assert_eq!(
        reuse.message.as_deref(),
        Some("refresh token used a second time: the grant is revoked")
    );
    let revoked = one(rows("oauth.revoke").await, "revoke");
    assert_eq!(revoked.principal_id.as_deref(), Some(second.as_str()));
    assert_eq!(revoked.studio.as_deref(), Some("std_lotus"));

    // No secret anywhere in the log.
    let all = crate::abuse::audit_log(
        &gw,
        flowgate::audit::Filter {
            ..Default::default()
        },
    )
    .await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        "lotus-owner-demo",
        VERIFIER,
        code.as_str(),
        refresh.as_str(),
        access2.as_str(),
        tokens["access_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
    gw.stop().await;
}

/// A refused bearer credential is recorded with the client's address and, when the store still
/// knows it (revoked, expired), the key or grant it belongs to.
#[tokio::test]
async fn rejected_credentials_are_audited_with_the_address_and_the_key_or_grant() {
    let gw = Gateway::start().await;
    let key = gw.key("std_lotus", &["classes:read"]).await;
    gw.running
        .app
        .keys
        .revoke(flowgate::store::Within::AllStudios, &key.info.id)
        .await
        .unwrap();
    assert_eq!(status_with(&gw, &key.secret).await, 401);

    let flow = Flow::register(&gw).await;
    let access = &flow.connect(&gw).await;
    let grant = expire_latest_grant(&gw).await;
    assert_eq!(status_with(&gw, access).await, 401);
    assert_eq!(status_with(&gw, "flow_sk_made-up").await, 401);

    let rows = crate::abuse::audit_log(
        &gw,
        flowgate::audit::Filter {
            outcome: Some("unauthenticated".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.message.as_deref().unwrap(),
                r.principal_kind.as_deref(),
                r.principal_id.as_deref(),
                r.client_addr.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("the token is not valid", None, None, Some("127.0.0.1")),
            (
                "the token has expired",
                Some("grant"),
                Some(grant.as_str()),
                Some("127.0.0.1")
            ),
            (
                "the token was revoked",
                Some("key"),
                Some(key.info.id.as_str()),
                Some("127.0.0.1")
            ),
        ]
    );
    gw.stop().await;
}

/// Behind a trusted proxy the address comes from the configured header (its right-most entry);
/// without the setting, that header is ignored.
#[tokio::test]
async fn the_client_address_comes_from_the_configured_proxy_header_only() {
    for (header, expected) in [
        (Some("X-Forwarded-For"), "198.51.100.7"),
        (None, "127.0.0.1"),
    ] {
        let gw = Gateway::start_with(|c| c.client_ip_header = header.map(str::to_string)).await;
        let r = reqwest::Client::new()
            .post(gw.url())
            .bearer_auth("flow_sk_made-up")
            .header("X-Forwarded-For", "203.0.113.9, 198.51.100.7")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let rows = crate::abuse::audit_log(
            &gw,
            flowgate::audit::Filter {
                limit: 1,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(rows[0].client_addr.as_deref(), Some(expected));
        gw.stop().await;
    }
}

#[tokio::test]
async fn clients_are_listed_and_deleted_from_the_cli() {
    const BIN: &str = env!("CARGO_BIN_EXE_flowgate");
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let access = flow.connect(&gw).await;
    assert_eq!(status_with(&gw, &access).await, 200);
    let dir = gw.running.app.config.data_dir.clone();
    let cli = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };

    let listed = cli(&["clients", "list", "--json"]);
    assert!(listed.status.success());
    let lines: Vec<Value> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["client_id"], flow.client_id.as_str());
    assert_eq!(lines[0]["client_name"], "Claude Desktop");
    assert_eq!(lines[0]["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        (
            lines[0]["grants"].as_i64(),
            lines[0]["active_grants"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let table = String::from_utf8(cli(&["clients", "list"]).stdout).unwrap();
    assert!(
        table.contains(&flow.client_id) && table.contains("Claude Desktop"),
        "{table}"
    );

    let deleted = cli(&["clients", "delete", &flow.client_id]);
    assert!(deleted.status.success());
    assert_eq!(
        String::from_utf8(deleted.stdout).unwrap().trim(),
        format!(
            "Deleted client {} (Claude Desktop) and revoked its 1 active grant(s); their tokens are refused on their next request.",
            flow.client_id
        )
    );
    // The running gateway refuses the grant's token at once.
    assert_eq!(status_with(&gw, &access).await, 401);
    assert!(cli(&["clients", "list", "--json"]).stdout.is_empty());
    let again = cli(&["clients", "delete", &flow.client_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr).unwrap().contains(&format!(
        "no registered client with id `{}`",
        flow.client_id
    )));
    gw.stop().await;
}
