//! The MCP server: `initialize`, `tools/list` and `tools/call` through rmcp's Streamable HTTP
//! transport, which answers every request on its own (2025-11-25 sessions are flowgate's:
//! `http::sessions`).
//!
//! Identity is never taken from a session: the HTTP middleware authenticates every request and
//! puts the [`Principal`] into the request's extensions, which rmcp hands to each call.
//!
//! Every tool in `tools/list` carries its manifest-declared `outputSchema`; a successful call's
//! `structuredContent` is the JSON object it describes (error results carry text only).

pub mod direct;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CustomRequest,
    CustomResult, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, Tool as McpTool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::app::App;
use crate::call;
use crate::identity::Principal;
use crate::telemetry::Arrival;
use crate::tool::{self, Access};
use crate::wire::Refusal;

/// The rmcp handler; rmcp serves every request statelessly (sessions are `http::sessions`'s), so
/// one is cloned per request, sharing the [`App`].
#[derive(Clone)]
pub struct Gateway {
    app: Arc<App>,
    /// What `tools/list` shows of each tool beyond its definition, in the registry's order.
    listings: Arc<Vec<Listing>>,
}

/// What `tools/list` shows of one tool beyond its definition, built once.
struct Listing {
    annotations: ToolAnnotations,
    /// The description with the tier note, shown to a studio below the tool's tier.
    gated: String,
}

/// One tool as `tools/list` shows it: rmcp's `Tool` field for field, in its order, with the
/// schemas written as the generator wrote them (the registry keeps no tree of them).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed<'a> {
    name: &'static str,
    title: &'static str,
    description: &'a str,
    input_schema: &'static RawValue,
    output_schema: &'static RawValue,
    annotations: &'a ToolAnnotations,
}

impl Listed<'_> {
    /// The same tool as rmcp's type, its schemas parsed (for the requests rmcp answers).
    fn to_rmcp(&self) -> McpTool {
        McpTool::new(
            self.name,
            self.description.to_string(),
            tool::object(self.input_schema),
        )
        .with_raw_output_schema(Arc::new(tool::object(self.output_schema)))
        .with_title(self.title)
        .with_annotations(self.annotations.clone())
    }
}

/// One `tools/list` page, serialized as rmcp writes a `ListToolsResult` to a 2025-era peer
/// (`tests/it/direct.rs` compares the bytes).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    tools: Vec<Listed<'a>>,
}

impl Gateway {
    pub fn new(app: Arc<App>) -> Self {
        let listings = app
            .registry
            .iter()
            .map(|t| {
                let d = t.def;
                Listing {
                    annotations: ToolAnnotations::with_title(d.title)
                        .read_only(d.access == Access::Read)
                        .destructive(d.destructive)
                        .idempotent(d.idempotent)
                        .open_world(d.open_world),
                    gated: format!("{}{}", d.description, call::gated_suffix(d.tier)),
                }
            })
            .collect();
        Self {
            app,
            listings: Arc::new(listings),
        }
    }

    /// One tool as listed, with its tier note if `gated`.
    fn listed<'a>(&'a self, tool: &'a tool::Tool, listing: &'a Listing, gated: bool) -> Listed<'a> {
        let d = tool.def;
        Listed {
            name: d.name,
            title: d.title,
            description: if gated { &listing.gated } else { d.description },
            input_schema: tool.input_schema,
            output_schema: tool.output_schema,
            annotations: &listing.annotations,
        }
    }
}

impl Gateway {
    /// The first steps of `tools/list`: the studio's tier (if the upstream tells it), the rate
    /// limit charged, and the index of the first tool of the page `cursor` names.
    pub(crate) async fn list_start(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<(Option<usize>, usize), ErrorData> {
        // The tier only adds "(Pro plan)" notes; if the upstream is down, list without them.
        let tier = match self.app.studio(&principal.studio).await {
            Ok(s) => Some(s.tier),
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn the studio's tier for tools/list");
                None
            }
        };
        call::charge(&self.app, principal, tier.as_deref()).await?;
        let studio_rank = tier.as_deref().map(tool::tier_rank);
        let start = match cursor {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .ok()
                .filter(|i| *i > 0 && *i < self.visible(principal, studio_rank).count())
                .ok_or_else(|| {
                    Refusal::bad_request(format!(
                        "Invalid params: the cursor {c:?} is not one tools/list returned"
                    ))
                    .json_rpc()
                })?,
        };
        Ok((studio_rank, start))
    }

    /// The tools `principal` sees, with the tier notes of a studio of rank `studio_rank`.
    fn visible<'a, 'p>(
        &'a self,
        principal: &'p Principal,
        studio_rank: Option<usize>,
    ) -> impl Iterator<Item = Listed<'a>> + use<'a, 'p> {
        self.app
            .registry
            .iter()
            .zip(self.listings.iter())
            .filter(|(t, _)| t.def.scope.is_none_or(|s| principal.scopes.contains(s)))
            .map(move |(t, listing)| {
                let gated = studio_rank.is_some_and(|rank| rank < tool::tier_rank(t.def.tier));
                self.listed(t, listing, gated)
            })
    }

    /// The `tools/list` page from `start` (a valid start: see [`Gateway::list_start`]).
    pub(crate) fn page(
        &self,
        principal: &Principal,
        studio_rank: Option<usize>,
        start: usize,
    ) -> Page<'_> {
        let size = self.app.config.tools_page_size;
        let mut visible = self.visible(principal, studio_rank).skip(start);
        let tools: Vec<Listed<'_>> = visible.by_ref().take(size).collect();
        let next_cursor = visible
            .next()
            .is_some()
            .then(|| (start + tools.len()).to_string());
        Page { next_cursor, tools }
    }

    pub(crate) fn app(&self) -> &Arc<App> {
        &self.app
    }
}

/// Why the params of a request for one of the methods this server implements are malformed
/// (`None`: not one of them, so "method not found" is the right answer).
///
/// rmcp reads a known method whose params do not fit its schema as a custom request, which
/// would answer -32601 "method not found"; the caller deserves -32602 and what to fix.
pub fn params_problem(method: &str, params: Option<&Value>) -> Option<String> {
    const KNOWN: &[&str] = &["initialize", "ping", "tools/list", "tools/call"];
    if !KNOWN.contains(&method) {
        return None;
    }
    if method != "tools/call" {
        return Some(format!(
            "Invalid params: the params of {method} do not match the MCP schema"
        ));
    }
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let problem = match params {
        None => "tools/call needs params: an object with `name` (the tool, a string) and optional `arguments` (an object)".to_string(),
        Some(p) if !p.is_object() => format!(
            "tools/call params must be an object with `name` (the tool, a string) and optional `arguments` (an object), got {}",
            kind(p)
        ),
        Some(p) => match (p.get("name"), p.get("arguments")) {
            (None, _) => "tools/call params need `name`, the tool to call (a string)".into(),
            (Some(n), _) if !n.is_string() => {
                format!("tools/call `name` must be a string, got {}", kind(n))
            }
            (_, Some(a)) if !a.is_object() && !a.is_null() => {
                format!("tools/call `arguments` must be an object, got {}", kind(a))
            }
            _ => "tools/call params do not match the MCP schema".into(),
        },
    };
    Some(format!("Invalid params: {problem}"))
}

/// "Method not found", said in a sentence that names the method and what is offered instead.
fn not_offered(method: &str) -> ErrorData {
    Refusal::not_found(format!(
        "The method {method:?} is not one this server offers: flowgate serves tools \
         (initialize, ping, tools/list and tools/call)."
    ))
    .json_rpc()
}

/// The principal the HTTP middleware authenticated for this very request.
fn principal_of(ctx: &RequestContext<RoleServer>) -> Result<Arc<Principal>, ErrorData> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Principal>>())
        .cloned()
        .ok_or_else(|| {
            Refusal::internal(&"a request reached the MCP handler without a principal").json_rpc()
        })
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("flowgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools to run a studio (classes, schedule, members, plans, coupons, bookings and more). \
                 Every call is checked against the studio's policies and audited. Write tools accept an \
                 idempotency_key: reuse it when retrying so a change is never applied twice.",
            )
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let principal = principal_of(&context)?;
        let tier = self
            .app
            .studio(&principal.studio)
            .await
            .ok()
            .map(|s| s.tier);
        call::charge(&self.app, &principal, tier.as_deref()).await?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = principal_of(&context)?;
        let cursor = request.and_then(|r| r.cursor);
        let (tier, start) = self.list_start(&principal, cursor.as_deref()).await?;
        let page = self.page(&principal, tier, start);
        let mut result =
            ListToolsResult::with_all_items(page.tools.iter().map(Listed::to_rmcp).collect());
        result.next_cursor = page.next_cursor;
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        let (i, tool) = self.app.registry.find(name)?;
        Some(self.listed(tool, self.listings.get(i)?, false).to_rmcp())
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(
            match params_problem(&request.method, request.params.as_ref()) {
                Some(message) => Refusal::bad_request(message).json_rpc(),
                None => not_offered(&request.method),
            },
        )
    }

    // Methods rmcp knows but flowgate does not offer (it advertises tools only): the same
    // sentence as for any other unknown method, instead of rmcp's bare method name.

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Err(not_offered("completion/complete"))
    }

    async fn get_prompt(
        &self,
        _request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Err(not_offered("prompts/get"))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Err(not_offered("prompts/list"))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Err(not_offered("resources/list"))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Err(not_offered("resources/templates/list"))
    }

    async fn read_resource(
        &self,
        _request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Err(not_offered("resources/read"))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = principal_of(&context)?;
        // On `notifications/cancelled` rmcp drops the response. The call itself is not abandoned
        // halfway: an upstream write already sent cannot be unsent, and its audit record must
        // still be written.
        let arrival = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arrival>());
        call::call_tool(
            &self.app,
            &principal,
            &request.name,
            request.arguments,
            arrival,
        )
        .await
        .map(Into::into)
    }
}
