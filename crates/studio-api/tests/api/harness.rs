//! Starts the real API and talks to it over HTTP.

use flowgate_studio_api::{Config, DEMO_FREE_STUDIO, DEMO_PRO_STUDIO, StudioApi};
use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

pub const PRO: &str = DEMO_PRO_STUDIO;
pub const FREE: &str = DEMO_FREE_STUDIO;

/// A running API on a fresh seeded database.
pub struct Api {
    pub server: StudioApi,
    pub dir: TempDir,
    http: reqwest::Client,
}

/// One response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// Assert an error response: exact status, code and field.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        match field {
            Some(f) => assert_eq!(self.body["error"]["field"], f, "body: {}", self.body),
            None => assert!(
                self.body["error"].get("field").is_none(),
                "body: {}",
                self.body
            ),
        }
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// Assert the status and return the body.
    #[track_caller]
    pub fn ok(self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        self.body
    }

    pub fn data(&self) -> &Vec<Value> {
        self.body["data"].as_array().expect("a list body")
    }
}

impl Api {
    pub async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        Api::start_in(dir).await
    }

    pub async fn start_in(dir: TempDir) -> Api {
        let server = StudioApi::start(Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        })
        .await
        .unwrap();
        Api {
            server,
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// Stop the server and start a new one on the same data directory.
    pub async fn restart(self) -> Api {
        let Api { server, dir, .. } = self;
        server.shutdown().await;
        Api::start_in(dir).await
    }

    /// A caller acting for `studio` with the right credential.
    pub fn studio(&self, studio: &str) -> Caller<'_> {
        Caller {
            api: self,
            studio: Some(studio.to_owned()),
            token: Some(self.server.service_token().to_owned()),
            key: None,
        }
    }

    /// A caller with the right credential and no studio.
    pub fn anon(&self) -> Caller<'_> {
        Caller {
            api: self,
            studio: None,
            token: Some(self.server.service_token().to_owned()),
            key: None,
        }
    }
}

/// Request builder for one studio.
#[derive(Clone)]
pub struct Caller<'a> {
    api: &'a Api,
    studio: Option<String>,
    token: Option<String>,
    key: Option<String>,
}

impl Caller<'_> {
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body.to_string())).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// Any method with a raw body (for malformed JSON).
    pub async fn send(&self, method: Method, path: &str, body: Option<String>) -> Resp {
        let url = format!("{}{path}", self.api.server.base_url());
        let mut req = self.api.http.request(method, url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = &self.studio {
            req = req.header("X-Flow-Studio", s);
        }
        if let Some(k) = &self.key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Resp {
            status,
            body,
            headers,
        }
    }
}

/// An upcoming scheduled occurrence of the studio with at least one free spot.
pub async fn open_session(c: &Caller<'_>) -> Value {
    let list = c
        .get("/schedule?status=scheduled&limit=100&from=2000-01-01T00:00:00Z")
        .await
        .ok(200);
    let now = chrono::Utc::now().to_rfc3339();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["starts_at"].as_str().unwrap() > now.as_str()
                && o["booked_count"].as_i64() < o["capacity"].as_i64()
        })
        .cloned()
        .expect("an open upcoming session")
}

/// `days` from today at `hh:mm` UTC, RFC 3339 (`2026-12-01T19:00:00Z`).
pub fn at(days: i64, hh: u32, mm: u32) -> String {
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    d.and_hms_opt(hh, mm, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Create a class in the Sun Room of the Pro studio with one session `days` ahead at 06:00 UTC.
pub async fn class_with_session(
    c: &Caller<'_>,
    name: &str,
    capacity: i64,
    days: i64,
) -> (String, String) {
    let class = c
        .post("/classes", serde_json::json!({"name": name, "duration_minutes": 60, "capacity": capacity, "price_cents": 2000, "room_id": "rm_lotus_sun"}))
        .await
        .ok(201);
    let id = class["id"].as_str().unwrap().to_owned();
    let occ = c
        .post(
            &format!("/classes/{id}/occurrences"),
            serde_json::json!({"starts_at": at(days, 6, 0)}),
        )
        .await
        .ok(201);
    (id, occ["data"][0]["id"].as_str().unwrap().to_owned())
}
