//! The sign-in and consent pages: plain server-rendered HTML that works without JavaScript.

use std::collections::BTreeSet;

use crate::tool::catalog::SCOPES;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink:#1f2430; --muted:#5b6472; --line:#e3e6ec; --brand:#3b5bdb; --bg:#f5f6f9; --warn:#b42318; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
main { max-width:560px; margin:48px auto; background:#fff; border:1px solid var(--line); border-radius:14px; padding:32px 36px; box-shadow:0 8px 30px rgba(20,30,60,.06); }
.brand { display:flex; align-items:center; gap:10px; font-weight:700; letter-spacing:.2px; color:var(--brand); margin-bottom:18px; }
.brand span { display:inline-grid; place-items:center; width:30px; height:30px; border-radius:8px; background:var(--brand); color:#fff; font-size:15px; }
h1 { font-size:22px; margin:0 0 6px; }
p.lead { color:var(--muted); margin:0 0 22px; }
label { display:block; font-weight:600; margin:14px 0 6px; }
input[type=email], input[type=password] { width:100%; padding:11px 12px; border:1px solid var(--line); border-radius:9px; font-size:16px; }
button { font:inherit; border-radius:9px; padding:10px 16px; border:1px solid var(--line); background:#fff; cursor:pointer; }
button.primary { background:var(--brand); border-color:var(--brand); color:#fff; font-weight:600; }
button.link { border:none; background:none; color:var(--brand); padding:6px 8px; }
.actions { display:flex; gap:10px; justify-content:flex-end; margin-top:24px; }
.error { background:#fef3f2; color:var(--warn); border:1px solid #fecdca; border-radius:9px; padding:10px 12px; margin-bottom:16px; }
.scopes { border:1px solid var(--line); border-radius:10px; margin:10px 0 0; padding:0; list-style:none; }
.scopes li { display:flex; gap:12px; align-items:flex-start; padding:11px 14px; border-top:1px solid var(--line); }
.scopes li:first-child { border-top:none; }
.scopes input { margin-top:4px; width:18px; height:18px; }
.scopes code { font-size:13px; color:var(--muted); }
.presets { display:flex; flex-wrap:wrap; gap:6px; align-items:center; color:var(--muted); font-size:14px; margin-top:14px; }
.who { background:var(--bg); border-radius:10px; padding:12px 14px; font-size:15px; }
.small { color:var(--muted); font-size:13px; margin-top:18px; }
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · flowgate</title><style>{STYLE}</style></head>\n<body><main><div class=\"brand\"><span>f</span>flowgate</div>{body}</main></body></html>\n",
        esc(title)
    )
}

/// The sign-in step of an authorization.
pub fn sign_in(
    flow: &str,
    csrf: &str,
    client_name: &str,
    redirect_host: &str,
    error: Option<&str>,
    email: &str,
) -> String {
    let error = error
        .map(|e| format!("<div class=\"error\" role=\"alert\">{}</div>", esc(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            r#"<h1>Sign in to your studio</h1>
<p class="lead"><strong>{client}</strong> ({host}) wants to connect to your studio. Sign in with your studio account to continue.</p>
{error}<form method="post" action="/oauth/authorize/sign-in">
<input type="hidden" name="flow" value="{flow}"><input type="hidden" name="csrf" value="{csrf}">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required value="{email}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="actions"><button class="primary" type="submit">Sign in</button></div>
</form>
<p class="small">Your password is checked by your studio's platform; the assistant never sees it.</p>"#,
            client = esc(client_name),
            host = esc(redirect_host),
            flow = esc(flow),
            csrf = esc(csrf),
            email = esc(email),
        ),
    )
}

/// The consent step: every requested scope with its description and a checkbox.
#[allow(clippy::too_many_arguments)]
pub fn consent(
    flow: &str,
    csrf: &str,
    client_name: &str,
    redirect_host: &str,
    user: &str,
    studio: &str,
    requested: &BTreeSet<String>,
    ticked: &BTreeSet<String>,
) -> String {
    let items: String = requested
        .iter()
        .map(|s| {
            let desc = SCOPES
                .iter()
                .find(|d| d.name == s.as_str())
                .map(|d| d.description)
                .unwrap_or("");
            format!(
                "<li><input type=\"checkbox\" id=\"s-{id}\" name=\"scope\" value=\"{v}\"{checked}><label for=\"s-{id}\" style=\"margin:0;font-weight:500\">{desc}<br><code>{v}</code></label></li>",
                id = esc(&s.replace(':', "-")),
                v = esc(s),
                checked = if ticked.contains(s) { " checked" } else { "" },
                desc = esc(desc),
            )
        })
        .collect();
    page(
        "Allow access",
        &format!(
            r#"<h1>Allow {client} to use your studio?</h1>
<p class="lead">It will act as this connection, within the permissions you tick. Redirects to <strong>{host}</strong>.</p>
<div class="who">Signed in as <strong>{user}</strong> · {studio}</div>
<form method="post" action="/oauth/authorize/consent">
<input type="hidden" name="flow" value="{flow}"><input type="hidden" name="csrf" value="{csrf}">
<div class="presets">Quick choices:
<button class="link" type="submit" name="action" value="preset:read-only">Read-only</button>
<button class="link" type="submit" name="action" value="preset:bookings">Bookings management</button>
<button class="link" type="submit" name="action" value="preset:full">Full control</button></div>
<ul class="scopes">{items}</ul>
<div class="actions"><button type="submit" name="action" value="deny">Deny</button><button class="primary" type="submit" name="action" value="approve">Approve</button></div>
</form>
<p class="small">Only the permissions you tick are granted. You can disconnect it any time; every call it makes is logged.</p>"#,
            client = esc(client_name),
            host = esc(redirect_host),
            user = esc(user),
            studio = esc(studio),
            flow = esc(flow),
            csrf = esc(csrf),
        ),
    )
}

/// An error that cannot be sent back to the client (unknown client, bad redirect URI).
pub fn error(message: &str) -> String {
    page(
        "Cannot continue",
        &format!(
            "<h1>This sign-in link cannot be used</h1><div class=\"error\" role=\"alert\">{}</div><p class=\"small\">Go back to your assistant and connect again.</p>",
            esc(message)
        ),
    )
}

/// The scopes of a quick choice, within what was requested.
pub fn preset(name: &str, requested: &BTreeSet<String>) -> BTreeSet<String> {
    requested
        .iter()
        .filter(|s| match name {
            "read-only" => s.ends_with(":read"),
            "bookings" => matches!(
                s.as_str(),
                "bookings:read"
                    | "bookings:write"
                    | "schedule:read"
                    | "classes:read"
                    | "members:read"
            ),
            _ => true,
        })
        .cloned()
        .collect()
}
