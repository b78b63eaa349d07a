//! Emitting the Rust side of the manifest: typed inputs, their Cedar context and upstream
//! request builders, and the static tool registry.
//!
//! The output is data plus thin glue: every helper it calls lives in the gateway's hand-written
//! `crate::tool::glue` module. It is formatted with prettyplease and deterministic (tools sorted
//! by name, properties in manifest order).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::cedar::{self, in_context, pascal};
use crate::ir::{Access, Format, Kind, Manifest, Object, Property, Schema, Segment, Target, Tool};
use crate::json_schema;

/// The generated module, formatted.
pub fn emit(m: &Manifest) -> String {
    let tokens = tokens(m);
    let file: syn::File = syn::parse2(tokens).expect("generated code is valid Rust");
    format!(
        "// @generated from manifest/ by build.rs — do not edit.\n\n{}",
        prettyplease::unparse(&file)
    )
}

fn tokens(m: &Manifest) -> TokenStream {
    let mut items = TokenStream::new();

    // Action ids.
    let consts = m.tools.iter().map(|t| {
        let c = format_ident!("{}", t.name.to_ascii_uppercase());
        let name = &t.name;
        let doc = format!("Cedar action `Flow::Action::\"{}\"`: {}.", t.name, t.title);
        let doc = doc_attr(&doc);
        quote! { #doc pub const #c: &str = #name; }
    });
    items.extend(quote! {
        /// Cedar action ids, one per tool: use these, never string literals.
        pub mod actions { #(#consts)* }
    });

    // Globals.
    let base = &m.base_path;
    let tiers = m.tiers.iter().map(|t| {
        let (n, ti) = (&t.name, &t.title);
        quote! { rt::TierDef { name: #n, title: #ti } }
    });
    let scopes = m.scopes.iter().map(|s| {
        let (n, d) = (&s.name, &s.description);
        quote! { rt::ScopeDef { name: #n, description: #d } }
    });
    items.extend(quote! {
        /// Prefix of every upstream path.
        pub const BASE_PATH: &str = #base;
        /// Tiers, lowest first.
        pub static TIERS: &[rt::TierDef] = &[#(#tiers),*];
        /// Declared scopes, sorted by name, with the sentence the consent page shows.
        pub static SCOPES: &[rt::ScopeDef] = &[#(#scopes),*];
    });

    // Inputs.
    for tool in &m.tools {
        items.extend(tool_items(m, tool));
    }

    // Registry.
    let defs = m.tools.iter().map(tool_def);
    items.extend(quote! {
        /// Every tool of the manifest, sorted by name.
        pub static TOOLS: &[rt::ToolDef] = &[#(#defs),*];
    });

    quote! {
        use crate::tool::glue as rt;
        #items
    }
}

fn tool_def(t: &Tool) -> TokenStream {
    let name = &t.name;
    let title = &t.title;
    let description = &t.description;
    let scope = match &t.scope {
        Some(s) => quote! { Some(#s) },
        None => quote! { None },
    };
    let tier = &t.tier;
    let access = match t.access {
        Access::Read => quote! { rt::Access::Read },
        Access::Write => quote! { rt::Access::Write },
    };
    let (destructive, idempotent, open_world, public, paginated) = (
        t.destructive,
        t.idempotent,
        t.open_world,
        t.public,
        t.paginated,
    );
    let schema = serde_json::to_string(&json_schema::object_schema(&t.input)).expect("json");
    let output = serde_json::to_string(&json_schema::output_schema(&t.output)).expect("json");
    let sensitive = t.sensitive_paths();
    let path_params: Vec<&str> = match &t.target {
        Target::Upstream(u) => u
            .path
            .iter()
            .filter_map(|s| match s {
                Segment::Param(p) => Some(p.as_str()),
                Segment::Literal(_) => None,
            })
            .collect(),
        Target::Builtin(_) => Vec::new(),
    };
    let target = match &t.target {
        Target::Upstream(u) => {
            let (method, path) = (&u.method, &u.path_template);
            quote! { rt::Target::Upstream { method: #method, path: #path } }
        }
        Target::Builtin(b) => {
            let v = format_ident!("{}", pascal(b));
            quote! { rt::Target::Builtin(rt::Builtin::#v) }
        }
    };
    let example = serde_json::to_string(&serde_json::json!({
        "input": t.example.input,
        "request": t.example.request,
    }))
    .expect("json");
    let decode = format_ident!("decode_{}", t.name);
    let action = format_ident!("{}", t.name.to_ascii_uppercase());
    let ty = format_ident!("{}", cedar::input_type_name(t));
    quote! {
        rt::ToolDef {
            name: #name,
            title: #title,
            description: #description,
            scope: #scope,
            tier: #tier,
            access: #access,
            destructive: #destructive,
            idempotent: #idempotent,
            open_world: #open_world,
            public: #public,
            paginated: #paginated,
            action: actions::#action,
            input_schema: #schema,
            output_schema: #output,
            sensitive: &[#(#sensitive),*],
            path_params: &[#(#path_params),*],
            target: #target,
            example: #example,
            decode: #decode,
            typed_schema: || ::schemars::schema_for!(#ty),
        }
    }
}

fn tool_items(m: &Manifest, t: &Tool) -> TokenStream {
    let ty = format_ident!("{}", cedar::input_type_name(t));
    let doc = format!(
        "Arguments of `{}` ({}).\n\n{}",
        t.name, t.title, t.description
    );
    let mut out = TokenStream::new();
    out.extend(struct_items(&ty, &doc, &t.input, true));

    // Upstream request.
    let upstream = match &t.target {
        Target::Upstream(u) => {
            let mut fmt = String::from(&m.base_path);
            let mut args = Vec::new();
            for seg in &u.path {
                match seg {
                    Segment::Literal(l) => fmt.push_str(&l.replace('{', "{{").replace('}', "}}")),
                    Segment::Param(p) => {
                        fmt.push_str("{}");
                        let f = field_ident(p);
                        args.push(quote! { rt::encode_segment(#p, &self.#f)? });
                    }
                }
            }
            let method = format_ident!("{}", u.method);
            let path_expr = if args.is_empty() {
                quote! { String::from(#fmt) }
            } else {
                // Defence in depth: the built path must survive URL normalisation unchanged.
                quote! { rt::checked_path(format!(#fmt, #(#args),*))? }
            };
            let query: Vec<_> = u.query.iter().map(|q| send(t, q, false)).collect();
            let body: Vec<_> = u.body.iter().map(|b| send(t, b, true)).collect();
            let binding = if query.is_empty() && body.is_empty() {
                quote! { let req }
            } else {
                quote! { let mut req }
            };
            let doc = doc_attr(&format!(
                "The upstream call: `{} {}{}`.",
                u.method, m.base_path, u.path_template
            ));
            Some(quote! {
                #doc
                pub fn to_upstream(&self) -> Result<rt::UpstreamRequest, rt::DecodeError> {
                    #binding = rt::UpstreamRequest::new(rt::Method::#method, #path_expr);
                    #(#query)*
                    #(#body)*
                    Ok(req)
                }
            })
        }
        Target::Builtin(_) => None,
    };
    let (idem, canonical) = if t.access == Access::Write {
        (
            quote! { input.idempotency_key },
            quote! { input.idempotency_key.is_some().then(|| rt::canonical(&input)) },
        )
    } else {
        (quote! { None }, quote! { None })
    };
    let upstream_call = if upstream.is_some() {
        quote! { Some(input.to_upstream()?) }
    } else {
        quote! { None }
    };
    // A built-in handler gets the typed input itself.
    let builtin = match &t.target {
        Target::Builtin(b) => {
            let v = format_ident!("{}", pascal(b));
            quote! { Some(rt::BuiltinInput::#v(input)) }
        }
        Target::Upstream(_) => quote! { None },
    };
    out.extend(quote! {
        impl #ty { #upstream }
    });
    let decode = format_ident!("decode_{}", t.name);
    let doc = doc_attr(&format!(
        "Decodes validated arguments of `{}` into its Cedar context and upstream request (or its built-in handler's typed input).",
        t.name
    ));
    out.extend(quote! {
        #doc
        fn #decode(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
            let input: #ty = rt::from_value(args)?;
            Ok(rt::Decoded {
                context: input.to_cedar(),
                upstream: #upstream_call,
                canonical: #canonical,
                idempotency_key: #idem,
                builtin: #builtin,
            })
        }
    });
    out
}

/// `req.query("x", ..)` / `req.body("x", ..)` for one input.
fn send(t: &Tool, name: &str, in_body: bool) -> TokenStream {
    let p = t.input.get(name).expect("validated: routed inputs exist");
    let f = field_ident(name);
    let call = if in_body {
        quote! { req.body(#name, rt::json(v)) }
    } else {
        quote! { req.query(#name, rt::query_value(v)) }
    };
    if p.required {
        quote! { { let v = &self.#f; #call; } }
    } else {
        quote! { if let Some(v) = &self.#f { #call; } }
    }
}

/// A struct for an object schema, its nested structs, and its `to_cedar`.
fn struct_items(ty: &Ident, doc: &str, obj: &Object, top: bool) -> TokenStream {
    let doc = doc_attr(doc);
    let mut out = TokenStream::new();
    let mut fields = Vec::new();
    let mut cedar = Vec::new();
    for p in &obj.properties {
        let f = field_ident(&p.name);
        let (rust_ty, nested) = rust_type(ty, p);
        out.extend(nested);
        let fdoc = &p.schema.description;
        let attrs = if p.required {
            quote! {}
        } else {
            quote! { #[serde(default, skip_serializing_if = "Option::is_none")] }
        };
        let full_ty = if p.required {
            rust_ty
        } else {
            quote! { Option<#rust_ty> }
        };
        let fdoc = doc_attr(fdoc);
        fields.push(quote! { #fdoc #attrs pub #f: #full_ty, });

        let include = if top {
            in_context(p)
        } else {
            cedar::cedar_type(&p.schema).is_some()
        };
        if include {
            let key = &p.name;
            let v = quote! { v };
            let expr = cedar_expr(&p.schema, &v);
            if p.required {
                cedar.push(quote! { { let v = &self.#f; fields.push((#key, #expr)); } });
            } else {
                cedar.push(quote! { if let Some(v) = &self.#f { fields.push((#key, #expr)); } });
            }
        }
    }
    let n = cedar.len();
    let fields_decl = if n == 0 {
        quote! { let fields: Vec<(&'static str, rt::Expr)> = Vec::new(); }
    } else {
        quote! { let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(#n); }
    };
    out.extend(quote! {
        #doc
        #[derive(Debug, Clone, PartialEq, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct #ty { #(#fields)* }

        impl #ty {
            /// This value as a Cedar record (numbers and the idempotency key left out).
            pub fn to_cedar(&self) -> rt::Expr {
                #fields_decl
                #(#cedar)*
                rt::cedar_record(fields)
            }
        }
    });
    out
}

/// The Rust type of a property, plus the nested struct items it needs.
fn rust_type(parent: &Ident, p: &Property) -> (TokenStream, TokenStream) {
    schema_type(&format!("{parent}{}", pascal(&p.name)), &p.schema)
}

fn schema_type(name: &str, s: &Schema) -> (TokenStream, TokenStream) {
    match &s.kind {
        Kind::String { .. } => (quote! { String }, quote! {}),
        Kind::Integer { .. } => (quote! { i64 }, quote! {}),
        Kind::Number { .. } => (quote! { f64 }, quote! {}),
        Kind::Boolean => (quote! { bool }, quote! {}),
        Kind::Array { items, .. } => {
            let (inner, nested) = schema_type(&format!("{name}Item"), items);
            (quote! { Vec<#inner> }, nested)
        }
        Kind::Object(o) => {
            let ident = format_ident!("{}", name);
            let items = struct_items(&ident, &s.description, o, false);
            (quote! { #ident }, items)
        }
    }
}

/// The Cedar expression for a value of schema `s` bound by reference to `v`.
fn cedar_expr(s: &Schema, v: &TokenStream) -> TokenStream {
    match &s.kind {
        Kind::String {
            format: Some(Format::DateTime | Format::Date),
            ..
        } => quote! { rt::cedar_datetime(#v) },
        Kind::String { .. } => quote! { rt::cedar_string(#v) },
        Kind::Integer { .. } => quote! { rt::cedar_long(*#v) },
        Kind::Boolean => quote! { rt::cedar_bool(*#v) },
        Kind::Array { items, .. } => {
            let x = quote! { x };
            let inner = cedar_expr(items, &x);
            quote! { rt::cedar_set(#v.iter().map(|x| #inner)) }
        }
        Kind::Object(_) => quote! { #v.to_cedar() },
        Kind::Number { .. } => unreachable!("numbers are left out of the Cedar context"),
    }
}

fn field_ident(name: &str) -> Ident {
    if syn::parse_str::<Ident>(name).is_ok() {
        Ident::new(name, Span::call_site())
    } else {
        Ident::new_raw(name, Span::call_site())
    }
}

/// `#[doc]` attributes, one per line, each with the leading space rustdoc expects.
fn doc_attr(text: &str) -> TokenStream {
    let lines = text.lines().map(|l| {
        if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        }
    });
    quote! { #(#[doc = #lines])* }
}
